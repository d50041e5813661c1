# The tenant guest the VM-hosting lanes run inside PlasmaVMC (bench-storage, demo-vm-webapp):
# a small NixOS disk image with fio for storage numbers and a serial console for the harness.
{ pkgs, lib, nixpkgs, system }:

let
  guest = lib.nixosSystem {
    inherit system;
    modules = [
      "${nixpkgs}/nixos/modules/profiles/qemu-guest.nix"
      ({ pkgs, ... }: {
        system.stateVersion = "24.05";
        networking.hostName = "vm-bench-guest";
        fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; autoResize = true; };
        boot.loader.grub.device = "/dev/vda";
        boot.kernelParams = [ "console=ttyS0,115200" ];
        services.getty.autologinUser = "root";
        environment.systemPackages = [ pkgs.fio pkgs.curl ];
      })
    ];
  };
in
import "${pkgs.path}/nixos/lib/make-disk-image.nix" {
  inherit pkgs lib;
  config = guest.config;
  name = "vm-bench-guest";
  format = "qcow2";
  partitionTableType = "legacy";
  diskSize = "auto";
  additionalSpace = "1024M";
}
