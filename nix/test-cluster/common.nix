# What every test-cluster node shares: identity and network from the harness (fw_cfg, the same
# contract the lab profile uses), the harness's SSH key, and test instrumentation.
{ config, lib, pkgs, modulesPath, ... }:

let
  cfg = config.ultracloud.testCluster;
  # The harness passes per-node settings as a shell env file over QEMU fw_cfg
  # (NODE_NAME, CLUSTER_IP, CLUSTER_PREFIX, CLUSTER_MAC, SSH_AUTHORIZED_KEY, ...).
  fwCfgEnv = "/sys/firmware/qemu_fw_cfg/by_name/opt/ultracloud/env/raw";
in
{
  imports = [ "${modulesPath}/profiles/qemu-guest.nix" ];

  options.ultracloud.testCluster = {
    name = lib.mkOption { type = lib.types.str; description = "Node name, as in the harness profile."; };
    ip = lib.mkOption { type = lib.types.str; description = "Address on the cluster network."; };
    roles = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
  };

  config = {
    networking.hostName = cfg.name;
    system.stateVersion = "24.05";

    fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; autoResize = true; };
    boot.loader.grub.enable = false; # the harness boots kernel + initrd directly

    # Instrumentation: serial console, journald to it, and fail fast instead of waiting in emergency mode.
    boot.kernelParams = [ "console=ttyS0,115200" "panic=1" "boot.panic_on_fail" ];
    services.journald.extraConfig = ''
      ForwardToConsole=yes
      MaxLevelConsole=info
    '';
    systemd.enableEmergencyMode = false;

    # Control path: the first NIC (QEMU user networking, SSH forwarded from the host) by DHCP;
    # the data path: the NIC whose MAC the harness passes, static on the cluster network.
    networking.useNetworkd = true;
    networking.useDHCP = false;
    systemd.network.networks."10-control" = { matchConfig.Name = "en* eth*"; networkConfig.DHCP = "ipv4"; linkConfig.RequiredForOnline = "no"; };
    systemd.network.networks."20-cluster" = {
      matchConfig.MACAddress = "52:54:00:da:*";
      address = [ "${cfg.ip}/24" ];
    };
    networking.firewall.enable = false;

    services.openssh = { enable = true; settings.PermitRootLogin = "prohibit-password"; };
    systemd.services.ultracloud-harness-key = {
      description = "Install the harness's SSH key from fw_cfg";
      wantedBy = [ "multi-user.target" ];
      before = [ "sshd.service" ];
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      path = [ pkgs.kmod pkgs.gnugrep pkgs.coreutils ];
      script = ''
        modprobe qemu_fw_cfg || true
        [ -r ${fwCfgEnv} ] || exit 0
        install -d -m 700 /root/.ssh
        grep '^SSH_AUTHORIZED_KEY=' ${fwCfgEnv} | cut -d= -f2- | tr -d "'" > /root/.ssh/authorized_keys
      '';
    };

    environment.systemPackages = with pkgs; [ curl jq iproute2 ];
  };
}
