// Builds the component with componentize-js (the toolchain `integration-host plugin build`
// hands over in COMPONENTIZE_JS), from plugin.js and the plugin API's WIT.
import { mkdir, readFile, writeFile } from 'node:fs/promises';

const { componentize } = await import(
  process.env.COMPONENTIZE_JS ?? '@bytecodealliance/componentize-js'
);
const source = await readFile('plugin.js', 'utf8');
const { component } = await componentize(source, {
  witPath: '../../wit/plugin@1.1.0',
  worldName: 'observer-plugin',
  // The plugin imports only the host interface: no randomness, stdio, clocks or HTTP.
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await mkdir('../target/components', { recursive: true });
await writeFile('../target/components/login_audit_js.wasm', component);
