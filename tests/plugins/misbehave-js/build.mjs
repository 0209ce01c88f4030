// Built by the tests with `integration-host plugin build` (see tests/support/plugins.rs).
import { mkdir, readFile, writeFile } from 'node:fs/promises';

const { componentize } = await import(
  process.env.COMPONENTIZE_JS ?? '@bytecodealliance/componentize-js'
);
const { component } = await componentize(await readFile('plugin.js', 'utf8'), {
  witPath: '../../../wit/plugin@1.1.0',
  worldName: 'observer-plugin',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await mkdir('../../../plugins/target/components', { recursive: true });
await writeFile('../../../plugins/target/components/misbehave_js.wasm', component);
