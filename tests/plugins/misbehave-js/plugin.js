// A test plugin: a customer_login observer in JavaScript that misbehaves as its manifest's
// [config] behaviour says: "throw", "loop", "memory", or "veto" (a veto naming its label).
import { config } from 'integration-host:plugin/host@1.1.0';

// Read at the first call: the module's top level runs when the component is built, without the
// host.
let settings = null;

export const observer = {
  onEvent(event) {
    settings ??= JSON.parse(config() || '{}');
    switch (settings.behaviour) {
      case 'throw':
        throw new Error('misbehave-js was told to throw');
      case 'loop':
        for (;;) {}
      case 'memory': {
        const hoard = [];
        for (;;) {
          hoard.push(new Array(1 << 20).fill(1));
        }
      }
      case 'veto':
        return { tag: 'veto', val: `vetoed by ${settings.label ?? 'misbehave-js'} (${event.tag})` };
      default:
        return { tag: 'proceed' };
    }
  },
};
