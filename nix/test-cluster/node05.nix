# node05: worker: VM hosting and storage (plasmavmc, lightningstor, coronafs) under node-agent
{ ... }:
{
  ultracloud.testCluster = { name = "node05"; ip = "10.100.0.22"; roles = [ "worker" ]; };
  services.plasmavmc.enable = true;
  services.lightningstor.enable = true;
  services.coronafs.enable = true;
  services.node-agent.enable = true;
}
