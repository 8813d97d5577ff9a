{
  description = "keys: secrets and machine identities for a NixOS fleet kept in git";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forEachSystem = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      cargo = builtins.fromTOML (builtins.readFile ./Cargo.toml);
    in
    {
      packages = forEachSystem (pkgs: {
        keys = pkgs.rustPlatform.buildRustPackage {
          pname = cargo.package.name;
          inherit (cargo.package) version;
          src = lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # .cargo/config.toml links the binary statically for a plain `cargo build`;
          # in the Nix store it is linked against the store's libc like any package
          # (a set RUSTFLAGS replaces the flags of the configuration file).
          env.RUSTFLAGS = "";
          # The test suite drives the real age, sops, ssh, git and Nix it installs
          # itself (scripts/test), which a build sandbox does not have.
          doCheck = false;
          meta = {
            description = cargo.package.description;
            license = [
              lib.licenses.mit
              lib.licenses.asl20
            ];
            mainProgram = "keys";
          };
        };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.keys;
      });

      apps = forEachSystem (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.keys;
        };
      });

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.keys ];
          packages = [
            pkgs.age
            pkgs.sops
            pkgs.ssh-to-age
            pkgs.openssh
            pkgs.rsync
            pkgs.git
            pkgs.jq
            pkgs.clippy
            pkgs.rustfmt
          ];
        };
      });
    };
}
