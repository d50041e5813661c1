{
  description = "UltraCloud test cluster: the six-node VM profile, the five-node storage profile and the installer ISO, built in one nix build";

  inputs = {
    # The UltraCloud monorepo: services, their NixOS modules, the nixpkgs pin. The harness points
    # this at a checkout with ULTRACLOUD_MONOREPO=/path/to/ultracloud (--override-input ultracloud).
    ultracloud.url = "git+file:///src/ultracloud";
    nixpkgs.follows = "ultracloud/nixpkgs";
  };

  outputs = { self, ultracloud, nixpkgs }:
    let
      system = "x86_64-linux";
      lib = nixpkgs.lib;
      pkgs = nixpkgs.legacyPackages.${system};

      defaultNodes = [ "node01" "node02" "node03" "node04" "node05" "node06" ];
      storageNodes = [ "storage-node01" "storage-node02" "storage-node03" "storage-node04" "storage-node05" ];

      mkNode = name: lib.nixosSystem {
        inherit system;
        specialArgs = { inherit ultracloud; };
        modules = [ ultracloud.nixosModules.default ./common.nix (./. + "/${name}.nix") ];
      };
      nodes = lib.genAttrs (defaultNodes ++ storageNodes) mkNode;

      # Each node image is a directory the harness boots directly: kernel, initrd, cmdline, disk.qcow2.
      vmGuestImage = import ./vm-guest-image.nix { inherit pkgs lib; };
    in
    {
      nixosConfigurations = nodes // {
        # The installer the bare-metal lane boots (QEMU here, USB or BMC virtual media on hardware).
        ultracloud-iso = lib.nixosSystem {
          inherit system;
          specialArgs = { inherit ultracloud; };
          modules = [
            "${nixpkgs}/nixos/modules/installer/cd-dvd/installation-cd-minimal.nix"
            ultracloud.nixosModules.default
            ({ ... }: {
              # Phone home to the deployer, fetch the install plan, install to the plan's by-id disk, reboot.
              services.first-boot-automation.enable = true;
              boot.kernelParams = [ "console=ttyS0,115200" "systemd.journald.forward_to_console=1" ];
              isoImage.isoName = "ultracloud-installer.iso";
            })
          ];
        };
      };

      packages.${system} =
        lib.mapAttrs' (name: nixos: lib.nameValuePair "${name}-vm" (vmGuestImage { inherit name nixos; })) nodes
        // {
          ultracloud-iso = self.nixosConfigurations.ultracloud-iso.config.system.build.isoImage;
          vm-bench-guest = import ./vm-bench-guest-image.nix { inherit pkgs lib nixpkgs system; };
        };
    };
}
