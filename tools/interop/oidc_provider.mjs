// Start panva's oidc-provider (OpenID Certified) as an IS-10 authorization server on loopback, for the
// interop tests (tests/interop). Usage: node oidc_provider.mjs CONFIG.json
// CONFIG: {cert, key, keys (private JWKs), cookie_key, listen_host, host, alg, initial_access_token, audience, resource, scopes,
//          response_types, token_ttl, oidc_only, claims_location}. Prints one JSON line {"issuer", "port", "pid"} on stdout when ready;
// stops on SIGTERM. Everything here is the provider's documented configuration: JWT access tokens via
// resourceIndicators (accessTokenFormat 'jwt'), x-nmos-* claims via extraTokenClaims, RFC 7591 with an
// initial access token, client_credentials, PKCE, refresh, revocation, devInteractions (a scripted login).
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const PERMS = { read: ['*'], write: ['*'] };

// The signing keys (private JWKs: one RSA key for RS512 and RS256, RFC 7518 §3.3, one P-256 key for
// ES256, one P-521 key for ES512) come in the config file: the test makes them, since generateKeyPairSync in a fresh Node 20
// process now and then deadlocks on an OpenSSL lock (seen here: main thread in futex wait).
const { keys } = cfg;

let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = https.createServer({ cert: readFileSync(cfg.cert), key: readFileSync(cfg.key) },
  (req, res) => handler(req, res));

server.listen(0, cfg.listen_host || '127.0.0.1', () => {
  const { port } = server.address();
  process.stderr.write(`interop: listening on 127.0.0.1:${port}\n`);
  const issuer = `https://${cfg.host || 'localhost'}:${port}`;
  const resourceServer = {
    scope: cfg.scopes.join(' '),
    audience: cfg.audience,
    accessTokenTTL: cfg.token_ttl || 60,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: cfg.alg || 'RS512' } },
  };
  const provider = new Provider(issuer, {
    jwks: { keys },
    cookies: { keys: [cfg.cookie_key] },
    scopes: ['openid', 'offline_access', ...cfg.scopes],
    responseTypes: cfg.response_types || ['code'],
    clientAuthMethods: ['client_secret_basic', 'private_key_jwt', 'none'],
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'RS512', 'ES256', 'PS256'] },
    pkce: { required: () => true },
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      registration: {
        enabled: true,
        initialAccessToken: cfg.initial_access_token,
      },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => cfg.resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          if (indicator !== cfg.resource) throw new Provider.errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
    // x-nmos-<api> permission objects (IS-10 TOK-20) for each granted NMOS scope.
    extraTokenClaims: async (ctx, token) => {
      const out = {};
      for (const s of (token.scope || '').split(' ')) {
        if (cfg.scopes.includes(s)) out[`x-nmos-${s}`] = PERMS;
      }
      // CONFIG claims_location: "ext" puts them under `ext` (where Ory Hydra puts custom claims),
      // "both" at top level and under `ext`; absent or "top": top level (IS-10 TOK-20).
      if (cfg.claims_location === 'ext') return { ext: out };
      if (cfg.claims_location === 'both') return { ...out, ext: out };
      return out;
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { RefreshToken: 3600, AuthorizationCode: 60, Interaction: 300, Session: 3600, Grant: 3600 },
    // The provider refuses outgoing requests to special-use addresses (SSRF guard): the tests'
    // client JWK Sets live on loopback, so this test launcher fetches without that guard.
    fetch: (url, options) => { const o = { ...options }; delete o.dispatcher; return fetch(url, o); },
  });
  // RFC 8414 §3 path: the provider serves OpenID Connect Discovery only; IS-10 clients ask here.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/.well-known/oauth-authorization-server') ctx.path = '/.well-known/openid-configuration';
    await next();
  });
  handler = provider.callback();
  // oidc_only: a deployment that answers only the OIDC form (/.well-known/openid-configuration); the
  // RFC 8414 path is 404 (this provider version would serve it too), as at many OIDC servers.
  if (cfg.oidc_only) {
    const serve = handler;
    handler = (req, res) => {
      if (req.url.split('?')[0].startsWith('/.well-known/oauth-authorization-server')) {
        res.statusCode = 404;
        res.end();
      } else serve(req, res);
    };
  }
  process.stdout.write(`${JSON.stringify({ issuer, port, pid: process.pid })}\n`);
});

process.on('SIGTERM', () => { server.close(); process.exit(0); });
