// fiberlb (lab), on the gateway: its API and the agent that drives haproxy, in one Node process.
'use strict';
require('./fiberlb-api.js');
require('./fiberlb-agent.js').start();
