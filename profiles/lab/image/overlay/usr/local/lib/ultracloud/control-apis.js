// The lab's control APIs in ONE Node process per control-plane node: plasmavmc (:8100), prismnet
// (:8110), coronafs (:8120, with this node's controller volume exports), k8shost (:8130) and
// fleet-scheduler (:8095). Under TCG a Node process costs seconds of CPU to start and some to
// idle: one instead of six.
'use strict';
require('./plasmavmc-api.js');
require('./prismnet-api.js');
require('./coronafs-api.js');
require('./k8shost-api.js');
require('./fleet-scheduler.js');
require('./coronafs-agent.js').startExporter('controller');
