// slidingsync.test.mjs: simplified sliding sync (MSC4186) end to end with
// matrix-js-sdk's own SlidingSync (startClient({slidingSync})), against the
// node run.sh started (EDGENODE_BASE_URL). Alice sets rooms up over the
// plain API; bob's client syncs with sliding sync only.
//
// Steps share the clients and rooms and run in order. Every wait is bounded
// (WAIT_MS) and driven by the SDK's events; none sleeps to synchronise.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { sdk, run, fromRunSh, recordingFetch, waitOn, waitUntil, register as registerOn } from "./harness.mjs";

const { SlidingSync } = await import("matrix-js-sdk/lib/sliding-sync.js");
const { RoomStickyEventsEvent } = await import("matrix-js-sdk/lib/models/room-sticky-events.js");
const { ClientEvent, RoomEvent, EventType, MsgType } = sdk;

const [BASE] = fromRunSh("EDGENODE_BASE_URL");

// Every sliding sync answer outside 2xx, for the report at the end; with
// E2E_HTTP_LOG, what each /sync answer held too.
const nonOk = [];
const recording = {
	async answer({ who, url, started }, res) {
		if (process.env.E2E_HTTP_LOG && url.pathname.endsWith("/sync")) {
			const body = await res.clone().text().catch(() => "");
			const j = JSON.parse(body || "{}");
			const roomCount = Object.keys(j.rooms ?? {}).length;
			console.log(`# ${who} ${url.search} -> ${res.status} after ${Date.now() - started} ms: rooms ${roomCount} ext ${JSON.stringify(j.extensions ?? {}).slice(0, 300)}`);
		}
		if (!res.ok) {
			const body = await res.clone().text().catch(() => "");
			nonOk.push(`${who}: ${res.status} ${url.pathname} ${body.slice(0, 200)}`);
		}
	},
};

const register = (name) => registerOn(BASE, name, "sliding-42", { fetchFn: recordingFetch(name, recording) });

let alice, bob, slidingSync;
const rooms = [];
const LIST = "all";
const LIST_TIMELINE_LIMIT = 2;

const bodiesIn = (client, roomId) =>
	(client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
		.filter((e) => e.getType() === EventType.RoomMessage)
		.map((e) => e.getContent().body);

after(() => {
	bob?.stopClient();
	slidingSync?.stop();
	console.log(nonOk.length ? `# non-2xx answers:\n#   ${nonOk.join("\n#   ")}` : "# non-2xx answers: none");
});

test("alice makes three rooms with bob in them; bob starts a sliding sync client", async () => {
	alice = await register(`ssalice${run}`);
	bob = await register(`ssbob${run}`);
	for (let i = 0; i < 3; i++) {
		const { room_id: id } = await alice.createRoom({ name: `sliding ${i}`, preset: "private_chat", invite: [bob.getUserId()] });
		await bob.joinRoom(id);
		rooms.push(id);
	}
	// Room 0 gets five messages: it is the most recently active.
	for (let i = 0; i < 5; i++) {
		await alice.sendMessage(rooms[0], { msgtype: MsgType.Text, body: `history ${i}` });
	}
	const list = {
		ranges: [[0, 19]],
		timeline_limit: LIST_TIMELINE_LIMIT,
		required_state: [
			["m.room.create", ""],
			["m.room.name", ""],
			["m.room.member", "$LAZY"],
		],
	};
	const subscription = { timeline_limit: 50, required_state: [["*", "*"]] };
	slidingSync = new SlidingSync(BASE, new Map([[LIST, list]]), subscription, bob, 10_000);
	await bob.startClient({ slidingSync });
});

test("the room list: every room with its name and member counts, and the list's count", async () => {
	await waitUntil(
		bob,
		[ClientEvent.Room, RoomEvent.Name],
		() =>
			rooms.every((id, i) => {
				const r = bob.getRoom(id);
				return r?.name === `sliding ${i}` && r.getJoinedMemberCount() === 2;
			}),
		() => `bob's client to list the three rooms by name with 2 joined members (has ${rooms.map((id) => bob.getRoom(id)?.name).join(", ")})`,
	);
	assert.equal(slidingSync.getListData(LIST)?.joinedCount, 3, "the list's count");
	for (const id of rooms) assert.equal(bob.getRoom(id).getInvitedMemberCount(), 0);
});

test("the list's timeline_limit is respected", async () => {
	const bodies = await waitUntil(bob, [RoomEvent.Timeline], () => {
		const b = bodiesIn(bob, rooms[0]);
		return b.length > 0 && b;
	}, "room 0's timeline");
	assert.ok(
		bob.getRoom(rooms[0]).getLiveTimeline().getEvents().length <= LIST_TIMELINE_LIMIT,
		`at most ${LIST_TIMELINE_LIMIT} events (got ${bodies})`,
	);
	assert.deepEqual(bodies, ["history 3", "history 4"]);
});

test("a room subscription returns the full timeline", async () => {
	slidingSync.modifyRoomSubscriptions(new Set([rooms[0]]));
	await waitUntil(
		bob,
		[RoomEvent.Timeline],
		() => bodiesIn(bob, rooms[0]).length === 5,
		() => `room 0's whole history after subscribing (has ${JSON.stringify(bodiesIn(bob, rooms[0]))})`,
	);
	assert.deepEqual(bodiesIn(bob, rooms[0]), [0, 1, 2, 3, 4].map((i) => `history ${i}`));
});

test("a live event arrives", async () => {
	const { event_id: id } = await alice.sendMessage(rooms[1], { msgtype: MsgType.Text, body: "live one" });
	const ev = await waitUntil(
		bob,
		[RoomEvent.Timeline],
		() => bob.getRoom(rooms[1])?.getLiveTimeline().getEvents().find((e) => e.getId() === id),
		"alice's live message in room 1",
	);
	assert.equal(ev.getContent().body, "live one");
	assert.equal(ev.getSender(), alice.getUserId());
});

test("a sticky event arrives through the sticky events extension", async () => {
	// Narrow the window to the top room, then send a sticky event of a type
	// that does not bump its room into the window: it can only come through
	// the extension (MSC4480: all rooms the list matches, whatever the range).
	slidingSync.setListRanges(LIST, [[0, 0]]);
	const target = rooms[2];
	const path =
		`/_matrix/client/v3/rooms/${encodeURIComponent(target)}/send/org.example.marker/st${run}` +
		`?org.matrix.msc4354.sticky_duration_ms=300000`;
	const res = await fetch(BASE + path, {
		method: "PUT",
		headers: { Authorization: `Bearer ${alice.getAccessToken()}`, "Content-Type": "application/json" },
		body: JSON.stringify({ marker: "sticky" }),
	});
	assert.equal(res.status, 200, await res.clone().text());
	const { event_id: id } = await res.json();
	// The SDK applies the extension after it has announced the sync, so the
	// room's own sticky-events update is what to wait on.
	const room = bob.getRoom(target);
	const sticky = await waitOn(
		[
			[bob, [ClientEvent.Sync]],
			[room, [RoomStickyEventsEvent.Update]],
		],
		() => [...room._unstable_getStickyEvents()].find((e) => e.getId() === id),
		"the sticky event among bob's room 2 sticky events",
	);
	assert.equal(sticky.getType(), "org.example.marker");
	assert.equal(
		bob.getRoom(target).getLiveTimeline().getEvents().some((e) => e.getId() === id),
		false,
		"it came through the extension, not the timeline",
	);
});
