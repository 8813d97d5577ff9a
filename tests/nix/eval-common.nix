# What the evaluations of a generated keys.nix share: nixpkgs' lib, the package
# stand-ins every module reads, and what a configuration decrypts with agenix and
# sops-nix, ready to print as JSON.
{ nixDir }:
let
  lib = import (nixDir + "/nixpkgs-lib");

  # The fields of `s` that `names` lists.
  pick = names: s: lib.genAttrs names (n: s.${n});

  # The messages of the assertions of `c` that fail.
  failed = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
in
{
  inherit lib failed;

  # Package paths the modules interpolate; never built here.
  pkgs = {
    age = "/stand-in/age";
    coreutils = "/stand-in/coreutils";
    writeShellScript = name: _: "/stand-in/${name}";
    writeTextFile = args: "/stand-in/${args.name}";
  };

  # What configuration `c` decrypts: each age secret, sops secret and sops template
  # with the fields every reader has, and those `more.age`, `more.sops` and
  # `more.templates` add.
  decrypts =
    more: c:
    let
      every = {
        age = [ "name" "path" "mode" "symlink" ];
        sops = [ "name" "key" "format" "path" "mode" ];
        templates = [ "name" "path" "content" "mode" ];
      };
      fields = kind: pick (every.${kind} ++ more.${kind} or [ ]);
    in
    {
      age = {
        identityPaths = map toString c.age.identityPaths;
        secrets = lib.mapAttrs (_: s: { file = toString s.file; } // fields "age" s) c.age.secrets;
      };
      sops = {
        sshKeyPaths = map toString c.sops.age.sshKeyPaths;
        secrets = lib.mapAttrs (_: s: { sopsFile = toString s.sopsFile; } // fields "sops" s) c.sops.secrets;
        templates = lib.mapAttrs (_: fields "templates") c.sops.templates;
        # What sops-nix puts in a template for each secret.
        placeholder = c.sops.placeholder;
      };
      assertions = failed c;
    };
}
