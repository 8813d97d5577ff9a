# Evaluates one user's home-manager module of a generated keys.nix with
# lib.evalModules, the real agenix and sops-nix home-manager modules, and small
# stand-ins for the home-manager options those modules touch. Prints what the user
# would decrypt:
#   nix-instantiate --eval --strict --json --store dummy:// eval-keys-home.nix \
#     --arg nixDir /path/to/nix-sources --arg keysNix ./keys.nix --argstr user NAME@HOST
{
  nixDir,
  keysNix,
  user,
  home ? "/home/${builtins.head (builtins.split "@" user)}",
}:
let
  common = import ./eval-common.nix { inherit nixDir; };
  inherit (common) lib;
  inherit (lib) mkOption types;

  # Package paths and platform facts the modules read; nothing is built here.
  pkgs = common.pkgs // {
    getconf = "/stand-in/getconf";
    gnupg = "/stand-in/gnupg";
    stdenv = {
      isLinux = true;
      isDarwin = false;
      hostPlatform = {
        isLinux = true;
        isDarwin = false;
      };
    };
    writeShellApplication = args: "/stand-in/${args.name}";
    writeText = name: _: "/stand-in/${name}";
    callPackage = _: _: { sops-install-secrets = "/stand-in/sops-install-secrets"; };
  };

  free = mkOption {
    type = types.submodule { freeformType = types.lazyAttrsOf types.raw; };
    default = { };
  };

  attrs = mkOption {
    type = types.attrsOf types.raw;
    default = { };
  };

  # The home-manager options that agenix and sops-nix read or set.
  standIns =
    { ... }:
    {
      options = {
        assertions = mkOption {
          type = types.listOf types.raw;
          default = [ ];
        };
        home = {
          homeDirectory = mkOption { type = types.str; };
          username = mkOption { type = types.str; };
          sessionVariables = attrs;
          activation = attrs;
        };
        xdg.configHome = mkOption { type = types.str; };
        systemd.user = {
          services = attrs;
          systemctlPath = mkOption {
            type = types.str;
            default = "/stand-in/systemctl";
          };
        };
        launchd.agents = attrs;
      };
      config = {
        _module.args.pkgs = pkgs;
        home.homeDirectory = home;
        home.username = builtins.head (builtins.split "@" user);
        xdg.configHome = "${home}/.config";
      };
    };

  hm = lib.evalModules {
    modules = [
      standIns
      (nixDir + "/agenix/modules/age-home.nix")
      (nixDir + "/sops-nix/modules/home-manager/sops.nix")
      (import keysNix).${user}
    ];
  };
in
common.decrypts { } hm.config
