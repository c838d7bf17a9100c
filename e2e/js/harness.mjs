// harness.mjs: what the matrix-js-sdk tests here (sdk, slidingsync,
// keybackup, media) share: loading the SDK on Node 20, quieting its log,
// the node's URLs from run.sh, a fetch wrapper for recording requests,
// bounded waits driven by the SDK's events, and registering and starting
// clients. What a test records or prints stays in the test.
//
// Importing this module has two effects, both needed before any test runs:
// Promise.withResolvers is polyfilled before the SDK is loaded, and the
// SDK's loggers are filtered to E2E_SDK_LOG (default warn). Import it
// before any other part of matrix-js-sdk, and load those parts with a
// dynamic import() in the test's body, as the SDK itself is loaded here.

import assert from "node:assert/strict";

// matrix-js-sdk uses Promise.withResolvers (Node 22+); polyfill it on Node 20
// before the SDK is loaded, hence the dynamic import below.
if (typeof Promise.withResolvers !== "function") {
	Promise.withResolvers = function withResolvers() {
		let resolve, reject;
		const promise = new this((res, rej) => {
			resolve = res;
			reject = rej;
		});
		return { promise, resolve, reject };
	};
}

/** matrix-js-sdk itself (its main entry), loaded after the polyfill. */
export const sdk = await import("matrix-js-sdk");
const { createClient, ClientEvent, SyncState } = sdk;

// The SDK's own logging (loglevel, a dependency of the SDK; its place in
// node_modules is fixed by package-lock.json). The SDK logs a lot at debug
// and sets every logger it makes to debug, so setting levels does not hold;
// keep only its warnings and errors unless E2E_SDK_LOG says otherwise, by
// filtering in the methodFactory. Loggers made later copy their parent's
// methodFactory, so the filter holds for them too.
{
	const { default: loglevel } = await import("loglevel");
	const threshold = loglevel.levels[(process.env.E2E_SDK_LOG ?? "warn").toUpperCase()] ?? loglevel.levels.WARN;
	const base = loglevel.methodFactory;
	const filtered = (method, level, name) =>
		(loglevel.levels[method.toUpperCase()] ?? loglevel.levels.DEBUG) >= threshold ? base(method, level, name) : () => {};
	for (const l of [loglevel, ...Object.values(loglevel.getLoggers())]) {
		l.methodFactory = filtered;
		l.rebuild();
	}
}

/**
 * How long any one wait may take (ms): every wait here and in the tests is
 * bounded by it, so a missing event fails the step saying what it waited
 * for instead of hanging until run.sh's --test-timeout backstop.
 */
export const WAIT_MS = 30_000;

/**
 * A suffix unique to this run (base 36 of the time), for user names and
 * keys: a name registered by an earlier run on the same node must not
 * collide.
 */
export const run = Date.now().toString(36);

/**
 * The values of the named environment variables, in order; throws naming
 * the missing ones if any is unset. run.sh sets them (EDGENODE_BASE_URL,
 * EDGENODE_A_URL, ...): a test file run on its own has no node to talk to.
 * @param {...string} names
 * @returns {string[]}
 */
export function fromRunSh(...names) {
	const missing = names.filter((n) => !process.env[n]);
	if (missing.length > 0) {
		const list = missing.length === 1 ? `${missing[0]} is not set` : `${missing.slice(0, -1).join(", ")} and ${missing.at(-1)} must be set`;
		throw new Error(`${list}: run this through e2e/js/run.sh`);
	}
	return names.map((n) => process.env[n]);
}

/**
 * @typedef {object} Request what recordingFetch passes its hooks
 * @property {string} who the label given to recordingFetch (which client)
 * @property {string} method upper case
 * @property {URL} url
 * @property {number} started Date.now() when the request was made
 */

/**
 * A fetch for createClient's fetchFn that lets a test see every request its
 * clients make and every answer they get, to report endpoints the SDK asks
 * for and the node answers badly (a test passes whatever those answers
 * were, so without this they would go unseen). With E2E_HTTP_LOG set it
 * prints each request (`# who: METHOD /path?query`).
 *
 * The hooks are per test: request(req) before the request is made,
 * answer(req, res) once it is answered (awaited; clone res to read its
 * body), error(req, err) if fetch throws (the error is rethrown). The
 * wrapper keeps no state of its own, so one may serve several clients.
 * @param {string} who
 * @param {{request?: (req: Request) => void, answer?: (req: Request, res: Response) => unknown, error?: (req: Request, err: unknown) => void}} [hooks]
 * @returns {typeof fetch}
 */
export function recordingFetch(who, hooks = {}) {
	return async (input, init = {}) => {
		const url = new URL(input instanceof Request ? input.url : String(input));
		const method = (init.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
		const req = { who, method, url, started: Date.now() };
		hooks.request?.(req);
		if (process.env.E2E_HTTP_LOG) console.log(`# ${who}: ${method} ${url.pathname}${url.search}`);
		let res;
		try {
			res = await fetch(input, init);
		} catch (err) {
			hooks.error?.(req, err);
			throw err;
		}
		await hooks.answer?.(req, res);
		return res;
	};
}

/**
 * Resolves with check()'s first truthy value, testing it now and after each
 * event named in sources ([emitter, events] pairs: a client, a Room, a
 * MatrixEvent, ...); rejects if check throws, or after ms saying what it
 * waited for (what: a string, or a function giving one, called then, so it
 * can tell the state it found). This is how the tests wait: on the SDK's
 * own events, bounded, never by sleeping. check may return a promise (a
 * crypto call, a request to the node): its value counts when it settles.
 * @template T
 * @param {[import("node:events").EventEmitter, string[]][]} sources
 * @param {() => T | Promise<T>} check
 * @param {string | (() => string)} what
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
export function waitOn(sources, check, what, ms = WAIT_MS) {
	return new Promise((resolve, reject) => {
		let done = false;
		const finish = (fn, v) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			for (const [em, evs] of sources) for (const e of evs) em.off(e, onEvent);
			fn(v);
		};
		const onEvent = () => {
			let v;
			try {
				v = check();
			} catch (err) {
				finish(reject, err);
				return;
			}
			if (typeof v?.then === "function") {
				v.then(
					(x) => x && finish(resolve, x),
					(err) => finish(reject, err),
				);
			} else if (v) {
				finish(resolve, v);
			}
		};
		const timer = setTimeout(() => {
			const desc = typeof what === "function" ? what() : what;
			finish(reject, new Error(`timed out after ${ms} ms waiting for ${desc}`));
		}, ms);
		for (const [em, evs] of sources) for (const e of evs) em.on(e, onEvent);
		onEvent();
	});
}

/**
 * waitOn for one client: the named events and, always, each sync the client
 * has processed (ClientEvent.Sync), so state the SDK applies without an
 * event of its own (a room summary, say) is seen too.
 * @template T
 * @param {import("matrix-js-sdk").MatrixClient} client
 * @param {string[]} events
 * @param {() => T | Promise<T>} check
 * @param {string | (() => string)} what
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
export function waitUntil(client, events, check, what, ms = WAIT_MS) {
	return waitOn([[client, [...new Set([...events, ClientEvent.Sync])]]], check, what, ms);
}

/**
 * A client (not started) for the user a /register or /login answer is for.
 * opts go to createClient as well (fetchFn, cryptoCallbacks, ...).
 * @param {string} baseUrl
 * @param {{access_token: string, user_id: string, device_id: string}} answer
 * @param {object} [opts]
 * @returns {import("matrix-js-sdk").MatrixClient}
 */
export function clientFor(baseUrl, answer, opts = {}) {
	return createClient({ baseUrl, accessToken: answer.access_token, userId: answer.user_id, deviceId: answer.device_id, ...opts });
}

/**
 * Registers username on baseUrl (m.login.dummy: run.sh starts the nodes
 * with open registration), checks the answer names the user and carries a
 * token and a device, and returns a client for it, not started. opts go to
 * createClient for the new client; opts.fetchFn also serves the anonymous
 * client that registers, so its request is recorded too.
 * @param {string} baseUrl
 * @param {string} username
 * @param {string} password
 * @param {object} [opts]
 * @returns {Promise<import("matrix-js-sdk").MatrixClient>}
 */
export async function register(baseUrl, username, password, opts = {}) {
	const anon = createClient(opts.fetchFn ? { baseUrl, fetchFn: opts.fetchFn } : { baseUrl });
	const res = await anon.registerRequest({ username, password, auth: { type: "m.login.dummy" } });
	assert.ok(res.access_token, "register gave no access_token");
	assert.ok(res.device_id, "register gave no device_id");
	assert.match(res.user_id, new RegExp(`^@${username}:`));
	return clientFor(baseUrl, res, opts);
}

/**
 * Starts client (startClient with startOpts) and resolves once its first
 * sync is processed (sync state PREPARED or SYNCING), within WAIT_MS. With
 * failOnError (the default) a sync state ERROR rejects at once rather than
 * waiting for the SDK to retry.
 * @param {import("matrix-js-sdk").MatrixClient} client
 * @param {object} [startOpts] for startClient (initialSyncLimit, ...)
 * @param {{failOnError?: boolean}} [opts]
 */
export async function startAndWaitForSync(client, startOpts = {}, { failOnError = true } = {}) {
	const who = `${client.getUserId()}/${client.getDeviceId()}`;
	const ready = waitUntil(
		client,
		[ClientEvent.Sync],
		() => {
			const s = client.getSyncState();
			if (failOnError && s === SyncState.Error) throw new Error(`${who}: sync state ERROR: ${client.getSyncStateData()?.error}`);
			return s === SyncState.Prepared || s === SyncState.Syncing;
		},
		`${who}'s first sync (PREPARED or SYNCING)`,
	);
	await client.startClient(startOpts);
	await ready;
}
