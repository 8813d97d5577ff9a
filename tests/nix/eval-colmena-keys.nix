# Evaluates every host module of a generated colmena-keys.nix with lib.evalModules
# against colmena's own option declarations (deploymentOptions and keyType), and
# prints each host's deployment.keys as colmena reads them:
#   nix-instantiate --eval --strict --json --store dummy:// eval-colmena-keys.nix \
#     --arg nixDir /path/to/nix-sources --arg colmenaKeys ./colmena-keys.nix
{
  nixDir,
  colmenaKeys,
}:
let
  lib = import (nixDir + "/nixpkgs-lib");
  colmena = import (nixDir + "/colmena/options.nix");

  node =
    name: module:
    (lib.evalModules {
      specialArgs = { inherit name; };
      modules = [
        colmena.deploymentOptions
        module
      ];
    }).config.deployment.keys;
in
lib.mapAttrs (
  name: module:
  lib.mapAttrs (_: k: {
    inherit (k)
      name
      text
      keyFile
      keyCommand
      destDir
      path
      user
      group
      permissions
      uploadAt
      ;
  }) (node name module)
) (import colmenaKeys)
