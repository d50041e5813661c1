# storage-node02: storage profile control plane (chainfire, flaredb) and LightningStor metadata
{ ... }:
{
  ultracloud.testCluster = { name = "storage-node02"; ip = "10.100.0.42"; roles = [ "storage-control" ]; };
  services.chainfire.enable = true;
  services.flaredb.enable = true;
  services.lightningstor.enable = true;
}
