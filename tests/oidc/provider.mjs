// A real OpenID provider for the tests: panva's oidc-provider 8.x (the
// OpenID-certified Node implementation, from npm) on 127.0.0.1, with test
// clients and users, PKCE (S256) required, and a sign-in that needs no typing.
//
//   node tests/oidc/provider.mjs CONFIG.json [--port N]
//   AURA_OIDC_CONFIG='{"clients":[...],"users":[...]}' node tests/oidc/provider.mjs [--port N]
//
// oidc-provider is imported from the npm folder $TEST_NPM_DIR (default
// ~/.cache/aura-npm, where scripts/test installs oidc-provider@8).
// Once listening it prints one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT,"oidc_provider":"8.x.y"}
// Each further line read on stdin is a whole new configuration (the same JSON
// as the file) applied at once, answered with {"reconfigured":N} or
// {"error":"..."} on stdout; the issuer, the keys already made, sessions,
// codes and grants survive it. The program exits when stdin closes, so it
// never outlives the test that started it.
//
// Configuration (every field but clients and users optional):
//   clients: [{client_id, client_secret, redirect_uris, token_endpoint_auth_method}]
//   users:   [{sub, email, email_verified, name, groups, amr, acr}]
//   login_as:        the sub signed in when the request has no login_hint
//                    (default: the first user)
//   deny:            when true, every sign-in ends with error=access_denied
//   keys:            key ids, one RS256 key made per id (default ["k1"]);
//                    a key keeps its material across reconfigurations
//   signing_key:     the id of the key that signs ID tokens (default keys[0])
//   published_keys:  the ids the JWKS lists (default: all of keys)
//   id_token_ttl:    ID token lifetime in seconds; may be 0 or negative to
//                    hand out ID tokens that are already expired (default 3600)
//   claims_in_id_token: email, name, groups in the ID token as well as at
//                    userinfo (default true; false is OIDC Core's strict
//                    reading: only at userinfo for the code flow)
//   keep_sessions:   when true, the provider keeps its session (cookie) between
//                    sign-ins like a real one; switching users in one browser
//                    then passes through its auto-submitted logout form
//                    (default false: every authorization request starts afresh)
//   tls:             {cert, key} PEM file paths: serve https (issuer https://127.0.0.1:PORT)
//
// Sign-in without typing: every authorization request goes to the
// interaction step (even with a provider session, see keep_sessions), which this program
// completes itself: the user is the one whose sub or email equals the
// request's login_hint, else login_as, else the first user; an unknown
// login_hint ends with error=access_denied. The user's amr and acr go into
// the ID token. Consent is granted for the requested scopes.
// Scopes: openid, email (email, email_verified), profile (name), groups
// (groups), offline_access.

import { createRequire } from 'node:module';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const npmDir = process.env.TEST_NPM_DIR || join(homedir(), '.cache', 'aura-npm');
const require = createRequire(join(npmDir, 'package.json'));
const { default: Provider, interactionPolicy } = await import(
  pathToFileURL(require.resolve('oidc-provider')).href
);
const version = require('oidc-provider/package.json').version;

function fail(message) {
  process.stderr.write(`oidc fixture: ${message}\n`);
  process.exit(2);
}

// ---- arguments and the first configuration ----
const args = process.argv.slice(2);
let port = 0;
let configFile;
for (let i = 0; i < args.length; i += 1) {
  if (args[i] === '--port') {
    port = Number(args[i + 1]);
    i += 1;
  } else {
    configFile = args[i];
  }
}
let firstConfig;
try {
  firstConfig = JSON.parse(configFile ? readFileSync(configFile, 'utf8') : process.env.AURA_OIDC_CONFIG);
} catch (err) {
  fail(`no configuration (a JSON file argument or AURA_OIDC_CONFIG): ${err.message}`);
}

// ---- keys: one RS256 key per id, made once ----
const keyMaterial = new Map();
function jwkFor(kid) {
  if (!keyMaterial.has(kid)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    keyMaterial.set(kid, { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' });
  }
  return keyMaterial.get(kid);
}

// The same cookie keys for every Provider instance, so a reconfiguration keeps sessions.
const cookieKeys = [randomBytes(32).toString('base64url')];

// ---- the provider for one configuration ----
function build(issuer, config) {
  const users = config.users || [];
  const keys = config.keys && config.keys.length ? config.keys : ['k1'];
  const signing = config.signing_key || keys[0];
  if (!keys.includes(signing)) throw new Error(`signing_key ${signing} is not in keys`);
  const published = config.published_keys || keys;
  const ttl = Number.isInteger(config.id_token_ttl) ? config.id_token_ttl : 3600;
  const findUser = (sub) => users.find((u) => u.sub === sub);

  // Every authorization request asks for login (unless this interaction just
  // did it), so the interaction below picks the user each time.
  const policy = interactionPolicy.base();
  policy.get('login').checks.add(new interactionPolicy.Check(
    'fixture_login',
    'the test fixture signs someone in on every request',
    (ctx) => !ctx.oidc.result?.login,
  ));

  const provider = new Provider(issuer, {
    clients: (config.clients || []).map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    })),
    // Signing picks the first RS256 key: the signing key goes first.
    jwks: { keys: [signing, ...keys.filter((k) => k !== signing)].map(jwkFor) },
    cookies: {
      keys: cookieKeys,
      // Plain-http loopback: SameSite=None cookies need Secure, which http cannot set.
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    pkce: { methods: ['S256'], required: () => true },
    acrValues: [...new Set(users.map((u) => u.acr).filter(Boolean))],
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      iss: null,
      // amr, acr and auth_time go with openid, as at Keycloak and Entra ID.
      openid: ['sub', 'amr', 'acr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    conformIdTokenClaims: config.claims_in_id_token === false,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    ttl: {
      IdToken: () => ttl,
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 600,
      RefreshToken: 3600,
      Session: 3600,
    },
    interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = findUser(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: user.email,
            email_verified: user.email_verified,
            name: user.name,
            groups: user.groups || [],
          };
        },
      };
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  // Why a request was refused, on stderr (the answers only say invalid_grant and the like).
  provider.on('server_error', (ctx, err) => process.stderr.write(`oidc fixture: server_error ${err.stack}\n`));
  for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => process.stderr.write(
      `oidc fixture: ${event} ${err.error}: ${err.error_detail || err.error_description || err.message}\n`,
    ));
  }

  // The JWKS lists only the published keys.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'jwks' && ctx.body?.keys) {
      ctx.body = { keys: ctx.body.keys.filter((k) => published.includes(k.kid)) };
    }
  });

  // The interaction step, done without a page.
  async function interact(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params } = details;
    if (config.deny) {
      return provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'the test provider denies every sign-in',
      }, { mergeWithLastSubmission: false });
    }
    let accountId = details.session?.accountId;
    if (prompt.name === 'login') {
      const hint = params.login_hint;
      const user = hint
        ? users.find((u) => u.sub === hint || u.email === hint)
        : findUser(config.login_as) || users[0];
      if (!user) {
        return provider.interactionFinished(req, res, {
          error: 'access_denied', error_description: `no test user for login_hint ${hint}`,
        }, { mergeWithLastSubmission: false });
      }
      accountId = user.sub;
    }
    const grant = details.grantId && prompt.name !== 'login'
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    grant.addOIDCScope(String(params.scope || 'openid'));
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    const result = { consent: { grantId } };
    if (prompt.name === 'login') {
      const user = findUser(accountId);
      result.login = { accountId, amr: user.amr, acr: user.acr, remember: false };
    }
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  const callback = provider.callback();
  return (req, res) => {
    const path = req.url.split('?')[0];
    // Unless keep_sessions, the authorization endpoint never sees the
    // provider's session cookie: each sign-in starts afresh, so a browser can
    // sign in as one user, then another (with a session, switching users
    // goes through the provider's auto-submitted logout form).
    if (!config.keep_sessions && /^\/auth(\/|$)/.test(path) && req.headers.cookie) {
      req.headers.cookie = req.headers.cookie.split(';')
        .filter((c) => !c.trim().startsWith('_session'))
        .join(';');
    }
    if (req.method === 'GET' && /^\/interaction\/[^/?]+$/.test(path)) {
      interact(req, res).catch((err) => {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ error: 'interaction_failed', error_description: err.message }));
      });
      return;
    }
    callback(req, res);
  };
}

// ---- the server ----
let handler = null;
const server = firstConfig.tls
  ? https.createServer({
    cert: readFileSync(firstConfig.tls.cert), key: readFileSync(firstConfig.tls.key),
  }, (req, res) => handler(req, res))
  : http.createServer((req, res) => handler(req, res));
server.on('error', (err) => fail(err.message));
server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  const issuer = `${firstConfig.tls ? 'https' : 'http'}://127.0.0.1:${bound}`;
  try {
    handler = build(issuer, firstConfig);
  } catch (err) {
    fail(`bad configuration: ${err.message}`);
  }
  process.stdout.write(`${JSON.stringify({ issuer, port: bound, oidc_provider: version })}\n`);

  let applied = 0;
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (!line.trim()) return;
    try {
      handler = build(issuer, JSON.parse(line));
      applied += 1;
      process.stdout.write(`${JSON.stringify({ reconfigured: applied })}\n`);
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
    }
  });
  input.on('close', () => process.exit(0));
});
