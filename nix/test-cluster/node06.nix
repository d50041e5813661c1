# node06: gateway: API gateway, metrics and credit service
{ ... }:
{
  ultracloud.testCluster = { name = "node06"; ip = "10.100.0.31"; roles = [ "gateway" ]; };
  services.apigateway.enable = true;
  services.nightlight.enable = true;
  services.creditservice.enable = true;
}
