# Evaluates one host module of a generated keys.nix with lib.evalModules, the real
# agenix and sops-nix NixOS modules, and small stand-ins for the nixpkgs options those
# modules touch. Prints what a host (and each of its containers) would decrypt:
#   nix-instantiate --eval --strict --json --store dummy:// eval-keys-nix.nix \
#     --arg nixDir /path/to/nix-sources --arg keysNix ./keys.nix --argstr host NAME
# With `--arg containerModules true` the host sets keys.containerModules to the
# agenix and sops-nix modules (a host with containers needs it).
{
  nixDir,
  keysNix,
  host,
  containerModules ? false,
}:
let
  common = import ./eval-common.nix { inherit nixDir; };
  inherit (common) lib;
  inherit (lib) mkOption types;

  pkgs = common.pkgs // {
    mount = "/stand-in/mount";
    gnugrep = "/stand-in/gnugrep";
    callPackage = _: _: _: "/stand-in/package";
  };

  anything = mkOption {
    type = types.lazyAttrsOf types.raw;
    default = { };
  };

  freeform = mkOption {
    type = types.submodule { freeformType = types.lazyAttrsOf types.raw; };
    default = { };
  };

  # The nixpkgs options that agenix and sops-nix read or set.
  standIns =
    { ... }:
    {
      options = {
        assertions = mkOption {
          type = types.listOf types.raw;
          default = [ ];
        };
        warnings = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        users = {
          users = mkOption {
            type = types.attrsOf (
              types.submodule {
                freeformType = types.lazyAttrsOf types.raw;
                options.group = mkOption {
                  type = types.str;
                  default = "users";
                };
                # As nixpkgs' sshd.nix declares it for every user.
                options.openssh.authorizedKeys.keys = mkOption {
                  type = types.listOf types.singleLineStr;
                  default = [ ];
                };
              }
            );
            default = { };
          };
          mutableUsers = mkOption {
            type = types.bool;
            default = true;
          };
        };
        services.openssh = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          # As nixpkgs' sshd.nix declares it: its type, and its default (the keys
          # sshd generates at boot when they are missing).
          hostKeys = mkOption {
            type = types.listOf types.attrs;
            default = [
              {
                type = "rsa";
                bits = 4096;
                path = "/etc/ssh/ssh_host_rsa_key";
              }
              {
                type = "ed25519";
                path = "/etc/ssh/ssh_host_ed25519_key";
              }
            ];
          };
        };
        services.userborn.enable = mkOption {
          type = types.bool;
          default = false;
        };
        # systemd.services as nixpkgs declares it (one unit per name, each merged from
        # every module that sets it), the rest free.
        systemd = mkOption {
          type = types.submodule {
            freeformType = types.lazyAttrsOf types.raw;
            options.services = mkOption {
              type = types.attrsOf (types.submodule { freeformType = types.lazyAttrsOf types.raw; });
              default = { };
            };
          };
          default = { };
        };
        system = freeform;
        environment = anything;
        boot = anything;
        containers = mkOption {
          type = types.attrsOf (types.submodule container);
          default = { };
        };
      };
      config._module.args.pkgs = pkgs;
    };

  # nixpkgs' containers.<name>: bindMounts as nixos-containers.nix declares them, and
  # config evaluated as a system of its own (which imports nothing of its host's).
  container =
    { ... }:
    {
      options.bindMounts = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule (
            { name, ... }:
            {
              options = {
                mountPoint = mkOption {
                  type = types.str;
                  default = name;
                };
                hostPath = mkOption {
                  type = types.nullOr types.str;
                  default = null;
                };
                isReadOnly = mkOption {
                  type = types.bool;
                  default = true;
                };
              };
            }
          )
        );
      };
      options.config = mkOption {
        type = lib.mkOptionType {
          name = "Toplevel NixOS config";
          merge = _: defs: (lib.evalModules { modules = [ standIns ] ++ map (d: d.value) defs; }).config;
        };
      };
    };

  agenix = nixDir + "/agenix/modules/age.nix";
  sopsNix = nixDir + "/sops-nix/modules/sops";

  hostModule = (import keysNix).${host};

  system = lib.evalModules {
    modules = [
      standIns
      agenix
      sopsNix
      hostModule
    ]
    ++ lib.optional containerModules {
      keys.containerModules = [
        agenix
        sopsNix
      ];
    };
  };

  decrypts =
    c:
    lib.recursiveUpdate
      (common.decrypts {
        age = [
          "owner"
          "group"
        ];
        sops = [
          "owner"
          "group"
          "restartUnits"
          "reloadUnits"
          "neededForUsers"
        ];
        templates = [
          "owner"
          "group"
          "restartUnits"
          "reloadUnits"
        ];
      } c)
      {
        # The units keys.nix declares (the ones that restart what reads an age secret).
        units = lib.filterAttrs (n: _: lib.hasPrefix "keys-" n) (
          lib.mapAttrs (_: u: u // { restartTriggers = map toString (u.restartTriggers or [ ]); }) c.systemd.services
        );
        sops.keyFile = if c.sops.age.keyFile == null then null else toString c.sops.age.keyFile;
        hostKeys = c.services.openssh.hostKeys;
        authorizedKeys = lib.mapAttrs (_: u: u.openssh.authorizedKeys.keys) c.users.users;
      };
in
decrypts system.config
// {
  containers = lib.mapAttrs (_: c: {
    bindMounts = lib.mapAttrs (_: m: { inherit (m) mountPoint hostPath isReadOnly; }) c.bindMounts;
    config = decrypts c.config;
  }) system.config.containers;
}
