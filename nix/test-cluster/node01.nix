# node01: control plane (chainfire, flaredb, iam; steady-state nodes do not run nix-agent) and the deployer on the bootstrap node
{ ... }:
{
  ultracloud.testCluster = { name = "node01"; ip = "10.100.0.11"; roles = [ "control-plane" "bootstrap" ]; };
  services.chainfire.enable = true;
  services.flaredb.enable = true;
  services.iam.enable = true;
  services.deployer.enable = true;
}
