# storage-node04: storage profile data node (CoronaFS exports, LightningStor objects) under node-agent
{ ... }:
{
  ultracloud.testCluster = { name = "storage-node04"; ip = "10.100.0.44"; roles = [ "storage-data" ]; };
  services.coronafs.enable = true;
  services.lightningstor.enable = true;
  services.node-agent.enable = true;
}
