# storage-node03: storage profile control plane (chainfire, flaredb) and LightningStor metadata
{ ... }:
{
  ultracloud.testCluster = { name = "storage-node03"; ip = "10.100.0.43"; roles = [ "storage-control" ]; };
  services.chainfire.enable = true;
  services.flaredb.enable = true;
  services.lightningstor.enable = true;
}
