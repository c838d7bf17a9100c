// media.test.mjs: media between two edgenode nodes over libp2p, with
// matrix-js-sdk clients (issue 16, acceptance 1). Run by run.sh, which
// starts node A and node B (B dialling A over QUIC on loopback) and passes
// EDGENODE_A_URL, EDGENODE_A_SERVER and EDGENODE_B_URL.
//
// alice on A uploads a PNG and its thumbnail and sends an m.image; bob's
// client on B sees it and downloads both through B's authenticated media
// endpoints (B fetches them from A), byte-identical, and a thumbnail B
// makes. bob sets an avatar on B, and alice's client on A downloads it
// through A's authenticated endpoints. Every wait is bounded (WAIT_MS) and
// driven by the SDK's events or a request's answer; none sleeps.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { deflateSync, crc32 } from "node:zlib";
import { sdk, WAIT_MS, run, fromRunSh, waitUntil, register as registerOn, startAndWaitForSync } from "./harness.mjs";

const { RoomEvent, MsgType } = sdk;

const [A, A_SERVER, B] = fromRunSh("EDGENODE_A_URL", "EDGENODE_A_SERVER", "EDGENODE_B_URL");

// --- a PNG made here --------------------------------------------------------

function chunk(type, data) {
	const len = Buffer.alloc(4);
	len.writeUInt32BE(data.length);
	const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(td));
	return Buffer.concat([len, td, crc]);
}

/** An RGB PNG of w x h pixels, a pattern seeded by seed. */
function png(w, h, seed) {
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(w, 0);
	ihdr.writeUInt32BE(h, 4);
	ihdr[8] = 8; // bit depth
	ihdr[9] = 2; // RGB
	const raw = Buffer.alloc((w * 3 + 1) * h);
	let x = seed >>> 0 || 1;
	for (let row = 0; row < h; row++) {
		const o = row * (w * 3 + 1);
		raw[o] = 0; // filter: none
		for (let i = 1; i <= w * 3; i++) {
			x ^= x << 13;
			x ^= x >>> 17;
			x ^= x << 5;
			raw[o + i] = x & 0xff;
		}
	}
	const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
	return Buffer.concat([sig, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

// --- clients ----------------------------------------------------------------

/** @type {import("matrix-js-sdk").MatrixClient} */
let alice;
/** @type {import("matrix-js-sdk").MatrixClient} */
let bob;
let roomId;

const register = (baseUrl, name) => registerOn(baseUrl, name, `pw-${name}-42`);
const start = (client) => startAndWaitForSync(client, { initialSyncLimit: 10 }, { failOnError: false });

/** GETs an authenticated media URL as client; returns the bytes and the answer. */
async function download(client, url) {
	const res = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` }, signal: AbortSignal.timeout(WAIT_MS) });
	const body = Buffer.from(await res.arrayBuffer());
	assert.equal(res.status, 200, `GET ${url}: ${res.status} ${body.toString().slice(0, 300)}`);
	return { body, res };
}

/** The authenticated (/_matrix/client/v1/media) URL of mxc on client's node. */
function authedUrl(client, mxc, w, h, method) {
	const url = client.mxcUrlToHttp(mxc, w, h, method, false, true, true);
	assert.ok(url?.includes("/_matrix/client/v1/media/"), `mxcUrlToHttp gave ${url}, not an authenticated media URL`);
	return url;
}

after(() => {
	alice?.stopClient();
	bob?.stopClient();
});

// --- the steps --------------------------------------------------------------

test("alice on A and bob on B share a room over libp2p", async () => {
	alice = await register(A, `alice${run}`);
	bob = await register(B, `bob${run}`);
	await Promise.all([start(alice), start(bob)]);
	({ room_id: roomId } = await alice.createRoom({ preset: "public_chat", name: "media" }));
	await bob.joinRoom(roomId, { viaServers: [A_SERVER] });
	await waitUntil(bob, [RoomEvent.Timeline], () => bob.getRoom(roomId)?.getMyMembership() === "join", "bob's join in his client");
});

const picture = png(320, 240, 7);
const thumbnail = png(64, 48, 11);

test("bob on B downloads alice's m.image and its thumbnail from A, byte-identical", async () => {
	const { content_uri: url } = await alice.uploadContent(picture, { type: "image/png", name: "picture.png" });
	const { content_uri: thumbUrl } = await alice.uploadContent(thumbnail, { type: "image/png", name: "thumbnail.png" });
	assert.ok(url.startsWith(`mxc://${A_SERVER}/`), `content_uri ${url} is not A's`);
	const { event_id: eventId } = await alice.sendMessage(roomId, {
		msgtype: MsgType.Image,
		body: "picture.png",
		url,
		info: { mimetype: "image/png", size: picture.length, w: 320, h: 240, thumbnail_url: thumbUrl, thumbnail_info: { mimetype: "image/png", size: thumbnail.length, w: 64, h: 48 } },
	});
	const ev = await waitUntil(bob, [RoomEvent.Timeline], () => bob.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId), "alice's m.image in bob's timeline");
	const content = ev.getContent();

	const got = await download(bob, authedUrl(bob, content.url));
	assert.ok(got.body.equals(picture), `bob's download of the picture: ${got.body.length} bytes, alice's ${picture.length}`);
	assert.equal(got.res.headers.get("content-type"), "image/png");
	const gotThumb = await download(bob, authedUrl(bob, content.info.thumbnail_url));
	assert.ok(gotThumb.body.equals(thumbnail), `bob's download of the thumbnail: ${gotThumb.body.length} bytes, alice's ${thumbnail.length}`);
	// And a thumbnail B makes of the picture it fetched.
	const made = await download(bob, authedUrl(bob, content.url, 32, 32, "crop"));
	assert.equal(made.res.headers.get("content-type"), "image/png");
	assert.equal(made.body.readUInt32BE(16), 32, "thumbnail width");
	assert.equal(made.body.readUInt32BE(20), 32, "thumbnail height");
});

test("bob sets an avatar on B; alice's client on A downloads it", async () => {
	const avatar = png(96, 96, 23);
	const { content_uri: avatarUrl } = await bob.uploadContent(avatar, { type: "image/png", name: "avatar.png" });
	await bob.setAvatarUrl(avatarUrl);
	const member = await waitUntil(
		alice,
		[RoomEvent.Timeline],
		() => {
			const m = alice.getRoom(roomId)?.getMember(bob.getUserId());
			return m?.getMxcAvatarUrl() === avatarUrl ? m : undefined;
		},
		"bob's new avatar in alice's room member list",
	);
	const got = await download(alice, authedUrl(alice, member.getMxcAvatarUrl()));
	assert.ok(got.body.equals(avatar), `alice's download of bob's avatar: ${got.body.length} bytes, bob's ${avatar.length}`);
});
