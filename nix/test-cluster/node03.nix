# node03: control plane (chainfire, flaredb, iam; steady-state nodes do not run nix-agent)
{ ... }:
{
  ultracloud.testCluster = { name = "node03"; ip = "10.100.0.13"; roles = [ "control-plane" ]; };
  services.chainfire.enable = true;
  services.flaredb.enable = true;
  services.iam.enable = true;
}
