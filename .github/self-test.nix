# The self-test's build (.github/workflows/self-test.yml): `count` leaves and a `top` that reads them, each new on
# every run (the nonce), so none can come from a cache and each must really be built somewhere. No nixpkgs: the
# sandbox's /bin/sh and its builtins are enough.
{ nonce, count ? "3", system ? builtins.currentSystem }:
let
  leaf = i: builtins.derivation {
    name = "nix-offload-self-test-${nonce}-${toString i}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo 'leaf ${toString i} of ${nonce}' > $out" ];
  };
  leaves = builtins.genList leaf (builtins.fromJSON count);
in
{
  top = builtins.derivation {
    name = "nix-offload-self-test-${nonce}";
    inherit system;
    builder = "/bin/sh";
    args = [
      "-c"
      "for f in ${builtins.concatStringsSep " " (map toString leaves)}; do read -r line < $f; echo \"$line\"; done > $out"
    ];
  };
}
