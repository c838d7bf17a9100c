// keybackup.test.mjs: server-side key backup with matrix-js-sdk's Rust
// crypto against a real node. Alice's first device creates a key backup and
// sends an encrypted message; a second device of hers, logged in after the
// message was sent (so no device ever shared the room key with it), gets
// the backup decryption key, restores the backup from the node and
// decrypts the message. Run by run.sh (make e2e-js), which starts the node
// and passes its base URL in EDGENODE_BASE_URL.
//
// The steps run in order and build on each other. Every wait is bounded
// (WAIT_MS) and driven by the SDK's events; none sleeps to synchronise.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { sdk, run, fromRunSh, recordingFetch, waitOn, waitUntil, register, clientFor, startAndWaitForSync } from "./harness.mjs";

const { createClient, ClientEvent, RoomEvent, MatrixEventEvent, EventType, MsgType } = sdk;
const { CryptoEvent } = await import("matrix-js-sdk/lib/crypto-api/index.js");

const [BASE] = fromRunSh("EDGENODE_BASE_URL");

// Every answer from a /room_keys endpoint, printed at the end; the SDK asks
// for some that may 404 by design (no backup yet).
const roomKeysAnswers = [];
const recording = {
	answer({ who, method, url }, res) {
		if (url.pathname.includes("/room_keys/")) {
			roomKeysAnswers.push(`${who}: ${method} ${url.pathname.replace(/.*\/room_keys\//, "/room_keys/")} -> ${res.status}`);
		}
	},
};
const fetchFor = (who) => recordingFetch(who, recording);

// Most waits here use waitOn with just the named events: unlike waitUntil,
// no re-check after every sync, as some checks ask the node (and a
// MatrixEvent has no sync to wait on).

const user = { name: `kb${run}`, password: "backup-me-42" };
/** @type {import("matrix-js-sdk").MatrixClient} */
let first;
/** @type {import("matrix-js-sdk").MatrixClient} */
let second;
let roomId;
let eventId;
const secret = `sent before the second device existed ${run}`;

// The recovery key (secret storage key) once the first device has made
// one; every client's getSecretStorageKey callback answers with it, as a
// user typing it in would.
let recoveryKey;
const cryptoCallbacks = {
	getSecretStorageKey: async ({ keys }) => (recoveryKey ? [Object.keys(keys)[0], recoveryKey.privateKey] : null),
};

async function withCrypto(client) {
	// In memory: node has no IndexedDB.
	await client.initRustCrypto({ useIndexedDB: false });
	return client;
}

const start = (client) => startAndWaitForSync(client, { initialSyncLimit: 20 });

// The secret message as it reaches client, the named device, in its
// timeline (decrypted or not).
const theMessageOn = (client, device) =>
	waitOn(
		[[client, [RoomEvent.Timeline, ClientEvent.Room]]],
		() => client.getRoom(roomId)?.findEventById(eventId),
		`the ${device} device to have the message in its timeline`,
	);

// Resolves once ev, the secret message, decrypts to the secret (where: for
// the time-out's message). Make it before asking for the keys, so the
// decryption cannot come first and go unseen.
const decrypts = (ev, where) =>
	waitOn(
		[[ev, [MatrixEventEvent.Decrypted]]],
		() => !ev.isDecryptionFailure() && ev.getClearContent()?.body === secret,
		() => `the message to decrypt ${where} (it reads ${JSON.stringify(ev.getContent())})`,
	);

after(() => {
	first?.stopClient();
	second?.stopClient();
	console.log(`# /room_keys answers: ${roomKeysAnswers.join("; ") || "none"}`);
});

test("alice's first device creates a key backup", async () => {
	first = await withCrypto(await register(BASE, user.name, user.password, { fetchFn: fetchFor("first"), cryptoCallbacks }));
	await start(first);
	const crypto = first.getCrypto();
	assert.equal(await crypto.getKeyBackupInfo(), null, "a new user has no backup");

	await crypto.resetKeyBackup();
	const info = await crypto.getKeyBackupInfo();
	assert.ok(info?.version, "the node has a backup version after resetKeyBackup");
	assert.equal(info.algorithm, "m.megolm_backup.v1.curve25519-aes-sha2");
	assert.ok(info.auth_data?.public_key, "the backup's auth_data carries the public key");
	const trust = await crypto.isKeyBackupTrusted(info);
	assert.ok(trust.matchesDecryptionKey, "the device holds the backup's decryption key");
	await waitOn(
		[[first, [CryptoEvent.KeyBackupStatus]]],
		async () => (await crypto.getActiveSessionBackupVersion()) === info.version,
		"the first device to start backing up to the new version",
	);
});

test("alice sends an encrypted message; its room key reaches the backup", async () => {
	const crypto = first.getCrypto();
	const created = await first.createRoom({
		name: "backed up",
		initial_state: [{ type: EventType.RoomEncryption, state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
	});
	roomId = created.room_id;
	await waitUntil(
		first,
		[ClientEvent.Room, RoomEvent.MyMembership, ClientEvent.Sync],
		async () => first.getRoom(roomId)?.getMyMembership() === "join" && (await crypto.isEncryptionEnabledInRoom(roomId)),
		"the first device to have the encrypted room, joined",
	);
	// The backup loop starts when a key is created; the remaining count
	// falls to zero once the node has taken the upload.
	const backedUp = waitOn(
		[[first, [CryptoEvent.KeyBackupSessionsRemaining]]],
		async () => {
			const version = await crypto.getActiveSessionBackupVersion();
			const r = await fetch(`${BASE}/_matrix/client/v3/room_keys/keys/${encodeURIComponent(roomId)}?version=${version}`, {
				headers: { Authorization: `Bearer ${first.getAccessToken()}` },
			});
			assert.equal(r.status, 200, "GET /room_keys/keys/{roomId}");
			const body = await r.json();
			return Object.keys(body.sessions ?? {}).length > 0 ? body : undefined;
		},
		"the room's megolm key to be in the node's backup (GET /room_keys/keys/{roomId})",
	);
	({ event_id: eventId } = await first.sendMessage(roomId, { msgtype: MsgType.Text, body: secret }));
	assert.match(eventId, /^\$/);
	const body = await backedUp;
	const [session] = Object.values(body.sessions);
	assert.equal(typeof session.first_message_index, "number");
	assert.equal(typeof session.session_data?.ciphertext, "string", "session_data is the client's encrypted object");

	const raw = await first.fetchRoomEvent(roomId, eventId);
	assert.equal(raw.type, "m.room.encrypted", "the node stores the message encrypted");
});

test("a second device, logged in after the message, restores the backup and decrypts it", async () => {
	const firstCrypto = first.getCrypto();
	const key = await firstCrypto.getSessionBackupPrivateKey();
	assert.ok(key instanceof Uint8Array && key.length === 32, "the first device hands over the backup decryption key");
	const version = await firstCrypto.getActiveSessionBackupVersion();

	const login = await createClient({ baseUrl: BASE, fetchFn: fetchFor("anon") }).loginRequest({
		type: "m.login.password",
		identifier: { type: "m.id.user", user: user.name },
		password: user.password,
		initial_device_display_name: "second device",
	});
	assert.notEqual(login.device_id, first.getDeviceId());
	second = await withCrypto(clientFor(BASE, login, { fetchFn: fetchFor("second") }));
	await start(second);
	const ev = await theMessageOn(second, "second");
	// Nobody shared the key with the second device: it cannot read the
	// message yet.
	await ev.getDecryptionPromise();
	assert.ok(ev.isDecryptionFailure(), `the message is undecryptable before the restore (it reads ${JSON.stringify(ev.getContent())})`);

	const crypto = second.getCrypto();
	await crypto.storeSessionBackupPrivateKey(key, version);
	const decrypted = decrypts(ev, "after the restore");
	const result = await crypto.restoreKeyBackup();
	assert.ok(result.total >= 1 && result.imported >= 1, `restored ${JSON.stringify(result)}`);
	await decrypted;
	assert.equal(ev.getContent().body, secret);
	assert.equal(ev.getContent().msgtype, MsgType.Text);
	assert.equal(ev.getSender(), first.getUserId());
});

// Element's recovery: the backup key goes into secret storage (account
// data, encrypted with a recovery key), here while setting up a new backup
// version, which replaces the old one and takes every key again. A third
// device, created after the message, gets the backup key from secret
// storage with the recovery key alone, restores and decrypts.
test("recovery: a new backup version, its key in secret storage; a third device restores with the recovery key", async () => {
	const crypto = first.getCrypto();
	const oldVersion = await crypto.getActiveSessionBackupVersion();
	recoveryKey = await crypto.createRecoveryKeyFromPassphrase();
	await crypto.bootstrapSecretStorage({
		createSecretStorageKey: async () => recoveryKey,
		setupNewSecretStorage: true,
		setupNewKeyBackup: true,
	});
	const newVersion = await waitOn(
		[[first, [CryptoEvent.KeyBackupStatus]]],
		async () => {
			const v = await crypto.getActiveSessionBackupVersion();
			return v && v !== oldVersion ? v : undefined;
		},
		"the first device to back up to a new version",
	);
	const old = await fetch(`${BASE}/_matrix/client/v3/room_keys/version/${oldVersion}`, {
		headers: { Authorization: `Bearer ${first.getAccessToken()}` },
	});
	assert.equal(old.status, 404, "the old backup version was deleted by the reset");
	// The keys the old version had are uploaded again to the new one.
	await waitOn(
		[[first, [CryptoEvent.KeyBackupSessionsRemaining]]],
		async () => {
			const r = await fetch(`${BASE}/_matrix/client/v3/room_keys/version/${newVersion}`, {
				headers: { Authorization: `Bearer ${first.getAccessToken()}` },
			});
			return r.status === 200 && (await r.json()).count >= 1;
		},
		"the new backup version to hold the room's key",
	);

	const login = await createClient({ baseUrl: BASE }).loginRequest({
		type: "m.login.password",
		identifier: { type: "m.id.user", user: user.name },
		password: user.password,
	});
	const third = await withCrypto(clientFor(BASE, login, { fetchFn: fetchFor("third"), cryptoCallbacks }));
	try {
		await start(third);
		const ev = await theMessageOn(third, "third");
		await ev.getDecryptionPromise();
		const thirdCrypto = third.getCrypto();
		await thirdCrypto.loadSessionBackupPrivateKeyFromSecretStorage();
		const decrypted = decrypts(ev, "on the third device");
		const result = await thirdCrypto.restoreKeyBackup();
		assert.ok(result.imported >= 1, `restored ${JSON.stringify(result)}`);
		await decrypted;
		assert.equal(ev.getContent().body, secret);
	} finally {
		third.stopClient();
	}
});
