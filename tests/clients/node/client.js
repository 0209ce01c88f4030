// An integrator's client built on the npm `oauth-1.0a` library, driven by the API tests.
//
// It listens for the activation POST on its own local port, then runs the OAuth 1.0a handshake
// (request token, access token; the callback and verifier travel in form bodies, the header
// carries a realm) and calls the REST API with signed GET, POST, PUT and DELETE requests whose
// query strings and form bodies carry spaces, `+`, `~`, non-ASCII text and repeated names. It
// prints one JSON line with the port it listens on, then one JSON line with every step's status
// and answer, and exits 0 whatever the server answered (the test judges).
//
// Usage: node client.js SERVER_URL INTEGRATION_NAME

'use strict';

const crypto = require('crypto');
const http = require('http');
const OAuth = require('oauth-1.0a');

const SERVER = process.argv[2].replace(/\/$/, '');
const NAME = process.argv[3];

function waitForActivation() {
  return new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        res.writeHead(200, { 'Content-Length': '0' });
        res.end();
        const fields = Object.fromEntries(new URLSearchParams(body));
        fields._content_type = req.headers['content-type'] || '';
        server.close();
        resolve(fields);
      });
    });
    server.listen(0, '127.0.0.1', () => {
      console.log(JSON.stringify({ listening: server.address().port }));
    });
    setTimeout(() => reject(new Error('no activation POST within 60 s')), 60000).unref();
  });
}

// RFC 3986 encoding for building URLs and form bodies (spaces as %20, never `+`).
function enc(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function formBody(pairs) {
  return pairs.map(([k, v]) => enc(k) + '=' + enc(v)).join('&');
}

// The `data` object oauth-1.0a signs: repeated names become arrays.
function formData(pairs) {
  const data = {};
  for (const [k, v] of pairs) {
    if (k in data) {
      data[k] = [].concat(data[k], v);
    } else {
      data[k] = v;
    }
  }
  return data;
}

async function main() {
  const received = await waitForActivation();
  const oauth = OAuth({
    consumer: { key: received.oauth_consumer_key, secret: received.oauth_consumer_secret },
    signature_method: 'HMAC-SHA256',
    realm: SERVER,
    hash_function(base, key) {
      return crypto.createHmac('sha256', key).update(base).digest('base64');
    },
  });

  async function send(method, url, token, pairs) {
    const request = { url, method, data: pairs ? formData(pairs) : {} };
    const headers = oauth.toHeader(oauth.authorize(request, token));
    const init = { method, headers };
    if (pairs) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = formBody(pairs);
    }
    return fetch(url, init);
  }

  const parseForm = (text) => Object.fromEntries(new URLSearchParams(text));

  const steps = [];
  let res = await send('POST', SERVER + '/oauth/token/request', undefined, [['oauth_callback', 'oob']]);
  let text = await res.text();
  steps.push({ step: 'request_token', status: res.status, body: text.replace(/oauth_token_secret=\w+/, 'oauth_token_secret=…') });
  const requestToken = parseForm(text);
  res = await send(
    'POST',
    SERVER + '/oauth/token/access',
    { key: requestToken.oauth_token, secret: requestToken.oauth_token_secret },
    [['oauth_verifier', received.oauth_verifier]],
  );
  text = await res.text();
  steps.push({ step: 'access_token', status: res.status, body: text.replace(/oauth_token_secret=\w+/, 'oauth_token_secret=…') });
  const accessToken = parseForm(text);
  const token = { key: accessToken.oauth_token, secret: accessToken.oauth_token_secret };

  async function record(step, response) {
    const text = await response.text();
    let body;
    try { body = JSON.parse(text); } catch (e) { body = text; }
    steps.push({ step, status: response.status, body });
    return body;
  }

  const api = SERVER + '/rest/V1/integrations';
  // Query: spaces, non-ASCII, `+` and `~` in the name, and a repeated `status`.
  await record('list', await send('GET', `${api}?name=${enc(NAME)}&status=1&status=0`, token));
  // Form body: the same characters, and repeated `resources`.
  const created = await record('create', await send('POST', api, token, [
    ['name', 'Créé par Node + ~ test'],
    ['email', 'node@client.example'],
    ['resources', 'Magento_Sales::cancel'],
    ['resources', 'Magento_Catalog::products'],
  ]));
  const id = created && created.id;
  await record('get', await send('GET', `${api}/${id}`, token));
  await record('update', await send('PUT', `${api}/${id}`, token, [
    ['name', 'Créé par Node + ~ test'],
    ['all_resources', '1'],
  ]));
  await record('delete', await send('DELETE', `${api}/${id}`, token));
  // Magento's searchCriteria names, percent-encoded in the URL as Magento's docs write them:
  // oauth-1.0a signs the names undecoded (and Magento refuses the signature).
  const group = (g, f, part) => `searchCriteria%5BfilterGroups%5D%5B${g}%5D%5Bfilters%5D%5B${f}%5D%5B${part}%5D`;
  const criteria = [
    [group(0, 0, 'field'), 'name'], [group(0, 0, 'value'), 'café%'], [group(0, 0, 'conditionType'), 'like'],
    [group(0, 1, 'field'), 'name'], [group(0, 1, 'value'), 'nobody'],
    [group(1, 0, 'field'), 'status'], [group(1, 0, 'value'), '1,2'], [group(1, 0, 'conditionType'), 'in'],
    ['searchCriteria%5BsortOrders%5D%5B0%5D%5Bfield%5D', 'created_at'],
    ['searchCriteria%5BsortOrders%5D%5B0%5D%5Bdirection%5D', 'DESC'],
    ['searchCriteria%5BpageSize%5D', '10'], ['searchCriteria%5BcurrentPage%5D', '1'],
  ].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  await record('search_criteria', await send('GET', `${api}?${criteria}`, token));
  // The same signed request sent twice: the second is a replay.
  const replayUrl = `${api}?status=1`;
  const headers = oauth.toHeader(oauth.authorize({ url: replayUrl, method: 'GET', data: {} }, token));
  await record('replay_first', await fetch(replayUrl, { headers }));
  await record('replay_second', await fetch(replayUrl, { headers }));

  console.log(JSON.stringify({
    activation: {
      content_type: received._content_type,
      store_base_url: received.store_base_url,
      fields: Object.keys(received).filter((k) => !k.startsWith('_')).sort(),
    },
    request_token_length: (requestToken.oauth_token || '').length,
    callback_confirmed: requestToken.oauth_callback_confirmed,
    access_token_length: (accessToken.oauth_token || '').length,
    steps,
  }));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
