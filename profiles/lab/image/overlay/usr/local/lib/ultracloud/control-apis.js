// The lab's control APIs for VM hosting in ONE Node process per control-plane node: plasmavmc
// (:8100), prismnet (:8110) and coronafs (:8120, with this node's controller volume exports).
// Under TCG a Node process costs seconds of CPU to start and some to idle: one instead of four.
'use strict';
require('./plasmavmc-api.js');
require('./prismnet-api.js');
require('./coronafs-api.js');
require('./coronafs-agent.js').startExporter('controller');
