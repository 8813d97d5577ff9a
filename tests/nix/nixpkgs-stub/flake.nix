# A stand-in for nixpkgs with the real nixpkgs lib (copied beside this file by the
# test) and packages that record how keys' flake calls them: enough for `nix flake
# show` and `nix eval` of the flake's outputs offline, with nothing built.
{
  outputs =
    { self }:
    let
      lib = import ./lib;
      package =
        system: name: attrs:
        (derivation {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "exit 1"
          ];
        })
        // attrs;
      packagesFor =
        system:
        let
          tool = name: package system name { meta.mainProgram = name; };
        in
        {
          stdenv.hostPlatform.system = system;
          rustPlatform.buildRustPackage =
            args:
            assert builtins.isString args.pname && builtins.isString args.version;
            assert builtins.pathExists args.cargoLock.lockFile;
            assert builtins.pathExists (args.src + "/Cargo.toml");
            assert builtins.pathExists (args.src + "/src/main.rs");
            package system "${args.pname}-${args.version}" {
              inherit (args) pname version meta;
              recorded = builtins.removeAttrs args [ "src" ];
            };
          mkShell = args: package system "nix-shell" { recorded = args; };
          age = tool "age";
          sops = tool "sops";
          ssh-to-age = tool "ssh-to-age";
          openssh = tool "ssh";
          rsync = tool "rsync";
          git = tool "git";
          jq = tool "jq";
          clippy = tool "clippy";
          rustfmt = tool "rustfmt";
        };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ] packagesFor;
    };
}
