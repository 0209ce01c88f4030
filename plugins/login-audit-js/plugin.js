// login-audit in JavaScript: a customer_login observer that logs every customer sign-in and
// refuses those of email domains listed in the manifest's [config] blocked_domains, with the same
// veto message as the Rust sample plugins/login-audit.
import { log, config } from 'integration-host:plugin/host@1.1.0';

let blocked = null;

function blockedDomains() {
  if (blocked === null) {
    const parsed = JSON.parse(config() || '{}');
    blocked = (parsed.blocked_domains || []).map((d) => d.toLowerCase());
  }
  return blocked;
}

export const observer = {
  onEvent(event) {
    if (event.tag !== 'customer-login') {
      return { tag: 'proceed' };
    }
    const login = event.val;
    const address = login.clientAddress ?? 'unknown';
    const at = login.email.lastIndexOf('@');
    const domain = at >= 0 ? login.email.slice(at + 1).toLowerCase() : '';
    if (blockedDomains().includes(domain)) {
      log('warn', 'customer sign-in refused: blocked email domain', [
        ['customer_id', String(login.customerId)],
        ['email', login.email],
        ['client_address', address],
      ]);
      return { tag: 'veto', val: 'Sign-in for customers of this email domain is disabled.' };
    }
    // Fields written out as pairs: each value crossing into the host costs a few microseconds
    // of interpreted glue, and building them through Object.entries costs more.
    log('info', 'customer signed in', [
      ['customer_id', String(login.customerId)],
      ['email', login.email],
      ['name', `${login.firstname} ${login.lastname}`],
      ['client_address', address],
      ['user_agent', login.userAgent ?? ''],
      ['at', String(login.at)],
    ]);
    return { tag: 'proceed' };
  },
};
