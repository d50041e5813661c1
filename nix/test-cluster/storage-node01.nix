# storage-node01: storage profile control plane (chainfire, flaredb) and LightningStor metadata
{ ... }:
{
  ultracloud.testCluster = { name = "storage-node01"; ip = "10.100.0.41"; roles = [ "storage-control" "bootstrap" ]; };
  services.chainfire.enable = true;
  services.flaredb.enable = true;
  services.lightningstor.enable = true;
  services.deployer.enable = true;
}
