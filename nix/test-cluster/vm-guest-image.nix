# One node's boot artifacts in the layout the harness's nix image provider reads:
#   kernel, initrd, cmdline   booted directly by QEMU (-kernel/-initrd/-append)
#   disk.qcow2                read-only base; each node boots a qcow2 overlay on it
{ pkgs, lib }:

{ name, nixos }:

let
  config = nixos.config;
  toplevel = config.system.build.toplevel;
  disk = import "${pkgs.path}/nixos/lib/make-disk-image.nix" {
    inherit pkgs lib config;
    name = "${name}-disk";
    format = "qcow2";
    partitionTableType = "none"; # a bare ext4 labelled "nixos", as common.nix mounts it
    diskSize = "auto";
    additionalSpace = "2048M";
  };
in
pkgs.runCommand "${name}-vm" { } ''
  mkdir -p $out
  ln -s ${toplevel}/kernel $out/kernel
  ln -s ${toplevel}/initrd $out/initrd
  ln -s ${disk}/nixos.qcow2 $out/disk.qcow2
  echo "init=${toplevel}/init root=LABEL=nixos ${toString config.boot.kernelParams}" > $out/cmdline
''
