// Writes the web bundle into dist/: an index.html that shows the version
// being deployed (OTA_VERSION, else package.json's) and an app script that
// tells the updater plugin the bundle booted. Without notifyAppReady() the
// plugin rolls the update back.
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
// otactl deploy web VERSION passes the version it deploys as OTA_VERSION.
const version = process.env.OTA_VERSION || pkg.version;
const dist = path.join(root, 'dist');

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(path.join(dist, 'assets'), { recursive: true });

fs.writeFileSync(path.join(dist, 'index.html'), `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>capapp ${version}</title>
</head>
<body>
  <h1>capapp <span id="version">${version}</span></h1>
  <script type="module" src="assets/app.js"></script>
</body>
</html>
`);

fs.writeFileSync(path.join(dist, 'assets', 'app.js'), `// capapp ${version}
// No bundler here: the plugin is reached through Capacitor's plugin registry.
const CapacitorUpdater = window.Capacitor && window.Capacitor.Plugins && window.Capacitor.Plugins.CapacitorUpdater;
if (CapacitorUpdater) {
  // Confirms the bundle works; otherwise the plugin reverts it after appReadyTimeout.
  CapacitorUpdater.notifyAppReady();
}
`);

console.log(`generated dist/ for capapp ${version}`);
