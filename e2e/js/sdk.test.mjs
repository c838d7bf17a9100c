// sdk.test.mjs: edgenode end to end with a real Matrix client, matrix-js-sdk,
// both clients syncing live (startClient). Run by run.sh (make e2e-js), which
// starts the node and passes its base URL in EDGENODE_BASE_URL.
//
// The tests run in order and share the two clients and the room: each step
// builds on the one before. Every wait is bounded (WAIT_MS, harness.mjs)
// and driven by the SDK's own events; none sleeps to synchronise.
//
// Every HTTP answer outside 2xx that either client got is recorded by a
// wrapper around fetch and printed at the end, so endpoints the SDK asks for
// and the node lacks show up in every run.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { sdk, run, fromRunSh, recordingFetch, waitUntil, register as registerOn, clientFor, startAndWaitForSync } from "./harness.mjs";

const {
	createClient,
	ClientEvent,
	RoomEvent,
	RoomMemberEvent,
	RoomStateEvent,
	SyncState,
	EventType,
	MsgType,
	ReceiptType,
	ThreadFilterType,
	PushRuleKind,
	NotificationCountType,
} = sdk;

const [BASE] = fromRunSh("EDGENODE_BASE_URL");

// --- recording every non-2xx answer ---------------------------------------

/** @type {{who: string, method: string, path: string, status: number|string, body: string}[]} */
const nonOk = [];
// Every endpoint asked for ("METHOD /path/template" -> count), for the log.
const asked = new Map();

// recordingFetch's hooks here: count every endpoint, record every answer
// outside 2xx and every network error.
const recording = {
	request({ method, url }) {
		const key = `${method} ${template(url.pathname)}`;
		asked.set(key, (asked.get(key) ?? 0) + 1);
	},
	async answer({ who, method, url }, res) {
		if (!res.ok) {
			const body = await res
				.clone()
				.text()
				.catch(() => "");
			nonOk.push({ who, method, path: url.pathname, status: res.status, body: body.slice(0, 300) });
		}
	},
	error({ who, method, url }, err) {
		// stopClient aborts the pending long-poll: that is no failure.
		if (err?.name !== "AbortError") {
			nonOk.push({ who, method, path: url.pathname, status: `network error: ${err?.message ?? err}`, body: "" });
		}
	},
};
const fetchFor = (who) => recordingFetch(who, recording);

// Room and user IDs make every path unique; fold them so the report groups
// by endpoint.
function template(path) {
	return decodeURIComponent(path)
		.replace(/![^/]+/g, "{roomId}")
		.replace(/\$[^/]+/g, "{eventId}")
		.replace(/@[^/]+/g, "{userId}")
		.replace(/(\/(send|typing|redact)\/[^/]+\/)[^/]+$/, "$1{txnId}");
}

function printNonOk() {
	console.log(`# endpoints the SDK asked for: ${[...asked].map(([k, n]) => `${k} x${n}`).join("; ")}`);
	if (nonOk.length === 0) {
		console.log("# non-2xx answers the SDK got: none");
		return;
	}
	const groups = new Map();
	for (const r of nonOk) {
		const key = `${r.status} ${r.method} ${template(r.path)}`;
		const g = groups.get(key) ?? { count: 0, body: r.body, who: new Set() };
		g.count++;
		g.who.add(r.who);
		groups.set(key, g);
	}
	console.log(`# non-2xx answers the SDK got (${nonOk.length} in all):`);
	for (const [key, g] of groups) {
		console.log(`#   ${key}  x${g.count} [${[...g.who].join(",")}]  ${g.body.replace(/\s+/g, " ")}`);
	}
}

// --- the two users ----------------------------------------------------------

const users = {
	alice: { name: `alice${run}`, password: "wonderland-42" },
	bob: { name: `bob${run}`, password: "builder-42" },
};
/** @type {import("matrix-js-sdk").MatrixClient} */
let alice;
/** @type {import("matrix-js-sdk").MatrixClient} */
let bob;
let roomId;
// Alice's first message as bob's client saw it.
let aliceMessageSeenByBob;

const register = (u) => registerOn(BASE, u.name, u.password, { fetchFn: fetchFor(u.name) });

// Sync states each client went through that mean a failed /sync.
const syncTrouble = [];

async function start(client) {
	client.on(ClientEvent.Sync, (state, prev, data) => {
		if (state === SyncState.Error || state === SyncState.Reconnecting) {
			syncTrouble.push(`${client.getUserId()}: ${prev} -> ${state}: ${data?.error?.message ?? data?.error ?? ""}`);
		}
	});
	// threadSupport: threads as Element shows them (the thread list comes
	// from GET /threads, thread replies leave the main timeline).
	await startAndWaitForSync(client, { initialSyncLimit: 20, threadSupport: true });
}

// A live timeline event in client's room, from /sync (not a local echo).
function liveEvent(client, eventId) {
	const ev = client.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
	return ev && !ev.status ? ev : undefined;
}

async function sendAndSee(from, to, body) {
	// waitUntil checks at once too, so an event that arrived before the send
	// returned still counts.
	const { event_id: eventId } = await from.sendMessage(roomId, { msgtype: MsgType.Text, body });
	assert.match(eventId, /^\$/, "send gave no event_id");
	const ev = await waitUntil(
		to,
		[RoomEvent.Timeline],
		() => liveEvent(to, eventId),
		`${to.getUserId()} to see ${from.getUserId()}'s message ${JSON.stringify(body)} (${eventId}) in its live timeline`,
	);
	assert.equal(ev.getSender(), from.getUserId());
	assert.equal(ev.getType(), EventType.RoomMessage);
	assert.equal(ev.getContent().body, body);
	assert.equal(ev.getContent().msgtype, MsgType.Text);
	return ev;
}

after(() => {
	alice?.stopClient();
	bob?.stopClient();
	printNonOk();
});

// --- the steps ------------------------------------------------------------

test("both users register (m.login.dummy) and start live-syncing clients", async () => {
	alice = await register(users.alice);
	bob = await register(users.bob);
	await Promise.all([start(alice), start(bob)]);
	for (const c of [alice, bob]) {
		assert.ok(c.isInitialSyncComplete(), `${c.getUserId()}'s initial sync is complete`);
	}
});

test("alice creates a room and invites bob; bob sees the invite and joins", async () => {
	const created = await alice.createRoom({ name: "e2e room", preset: "private_chat" });
	roomId = created.room_id;
	assert.match(roomId, /^!/);
	await waitUntil(
		alice,
		[ClientEvent.Room, RoomEvent.MyMembership],
		() => alice.getRoom(roomId)?.getMyMembership() === "join",
		"alice's client to have the room she created, joined",
	);

	const invited = waitUntil(
		bob,
		[ClientEvent.Room, RoomEvent.MyMembership],
		() => {
			const room = bob.getRoom(roomId);
			return room?.getMyMembership() === "invite" ? room : undefined;
		},
		"bob's client to show the invite (a Room with membership invite)",
	);
	await alice.invite(roomId, bob.getUserId());
	const room = await invited;
	const inviteEvent = room.getMember(bob.getUserId())?.events.member;
	assert.equal(inviteEvent?.getSender(), alice.getUserId(), "the invite's sender");
	assert.equal(room.name, "e2e room", "the invite's stripped state carries the room name");

	await bob.joinRoom(roomId);
	await waitUntil(
		bob,
		[RoomEvent.MyMembership, ClientEvent.Room, RoomStateEvent.Members],
		() => bob.getRoom(roomId)?.getMyMembership() === "join",
		"bob's client to show him joined",
	);
	await waitUntil(
		alice,
		[RoomStateEvent.Members, RoomMemberEvent.Membership],
		() => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join",
		"alice's client to see bob joined",
	);
	for (const c of [alice, bob]) {
		const room = c.getRoom(roomId);
		await waitUntil(
			c,
			[RoomStateEvent.Members],
			() => room.getJoinedMemberCount() === 2 && room.getInvitedMemberCount() === 0,
			() =>
				`${c.getUserId()}'s room to count 2 joined, 0 invited (counts ${room.getJoinedMemberCount()} joined, ` +
				`${room.getInvitedMemberCount()} invited)`,
		);
	}
});

test("messages go both ways, each seen live by the other client", async () => {
	aliceMessageSeenByBob = await sendAndSee(alice, bob, "hello bob, from alice");
	await sendAndSee(bob, alice, "hello alice, from bob");
	// The order holds on both sides.
	for (const c of [alice, bob]) {
		const bodies = c
			.getRoom(roomId)
			.getLiveTimeline()
			.getEvents()
			.filter((e) => e.getType() === EventType.RoomMessage)
			.map((e) => e.getContent().body);
		assert.deepEqual(bodies.slice(-2), ["hello bob, from alice", "hello alice, from bob"], `${c.getUserId()}'s timeline order`);
	}
});

// What bob's client model shows of alice's first message: its body (the
// edited one once an edit applies), how many 👍 reactions it has, and its
// thread (from the room's thread list) with the number of replies.
function modelOfRoot(room, rootId) {
	const root = room.findEventById(rootId);
	const reactions = room.relations
		.getChildEventsForEvent(rootId, "m.annotation", EventType.Reaction)
		?.getSortedAnnotationsByKey()
		?.find(([key]) => key === "👍")?.[1].size;
	const thread = room.getThreads().find((t) => t.id === rootId);
	return { body: root?.getContent().body, reactions: reactions ?? 0, threadReplies: thread?.length ?? 0 };
}

test("alice edits her message, reacts to it and replies in a thread; bob's client shows all three", async () => {
	const rootId = aliceMessageSeenByBob.getId();
	await alice.sendMessage(roomId, {
		msgtype: MsgType.Text,
		body: "* hello bob, edited",
		"m.new_content": { msgtype: MsgType.Text, body: "hello bob, edited" },
		"m.relates_to": { rel_type: "m.replace", event_id: rootId },
	});
	await alice.sendEvent(roomId, EventType.Reaction, { "m.relates_to": { rel_type: "m.annotation", event_id: rootId, key: "👍" } });
	await alice.sendMessage(roomId, rootId, { msgtype: MsgType.Text, body: "a reply in the thread" });
	const want = { body: "hello bob, edited", reactions: 1, threadReplies: 1 };
	const room = bob.getRoom(roomId);
	await waitUntil(
		bob,
		[RoomEvent.Timeline, "Thread.new", "Thread.update", "Event.replaced", "Relations.add"],
		() => {
			const got = modelOfRoot(room, rootId);
			return got.body === want.body && got.reactions === want.reactions && got.threadReplies === want.threadReplies;
		},
		() => `bob's client to show ${JSON.stringify(want)} (shows ${JSON.stringify(modelOfRoot(room, rootId))})`,
	);
});

test("a new client of bob's, whose first sync holds none of it, shows the same from the server's aggregations", async () => {
	// A message after them, and initialSyncLimit 1: the edit, reaction and
	// reply are not in the new client's first sync. The thread list (GET
	// /threads, which Element asks for when its thread panel opens) brings
	// the root with its bundled m.thread and m.replace, /relations the
	// reaction.
	await sendAndSee(alice, bob, "after the thread");
	const fetchFn = fetchFor(`${users.bob.name}-2`);
	const login = await createClient({ baseUrl: BASE, fetchFn }).loginWithPassword(users.bob.name, users.bob.password);
	const bob2 = clientFor(BASE, login, { fetchFn });
	try {
		await startAndWaitForSync(bob2, { initialSyncLimit: 1, threadSupport: true }, { failOnError: false });
		const room = await waitUntil(bob2, [ClientEvent.Room], () => bob2.getRoom(roomId), "bob's new client to have the room");
		const rootId = aliceMessageSeenByBob.getId();
		assert.equal(room.findEventById(rootId), undefined, "the root is not in the new client's first sync");
		const [all] = await room.createThreadsTimelineSets();
		await room.fetchRoomThreadList(ThreadFilterType.All);
		const listed = all.getLiveTimeline().getEvents().map((e) => e.getId());
		assert.deepEqual(listed, [rootId], "the thread list (GET /threads)");
		const root = all.getLiveTimeline().getEvents()[0];
		assert.equal(root.getContent().body, "hello bob, edited", "the root's body (bundled m.replace)");
		const summary = root.getServerAggregatedRelation("m.thread");
		assert.equal(summary?.count, 1, "the thread's reply count (bundled m.thread)");
		assert.equal(summary?.latest_event?.content?.body, "a reply in the thread", "the thread's latest event (bundled m.thread)");
		assert.equal(summary?.current_user_participated, false, "bob took no part in the thread");
		const thread = await waitUntil(
			bob2,
			["Thread.new", "Thread.update"],
			() => room.getThreads().find((t) => t.id === rootId),
			() => `the thread in the new client's threads (has ${room.getThreads().map((t) => t.id)})`,
		);
		assert.equal(thread.length, 1, "the thread's reply count in the client model");
		const rel = await bob2.relations(roomId, aliceMessageSeenByBob.getId(), "m.annotation", EventType.Reaction);
		assert.deepEqual(
			rel.events.map((e) => e.getRelation()?.key),
			["👍"],
			"the reactions /relations lists",
		);
	} finally {
		bob2.stopClient();
	}
});

test("bob finds alice through the user directory (a room they share)", async () => {
	const res = await bob.searchUserDirectory({ term: users.alice.name, limit: 5 });
	const found = res.results.find((r) => r.user_id === alice.getUserId());
	assert.ok(found, `bob's search for ${users.alice.name} found ${JSON.stringify(res.results)}`);
	assert.equal(found.display_name, users.alice.name, "alice's display name (her localpart, set at registration)");
	assert.equal(res.limited, false);
});

test("/search: bob finds alice's message by a word in it", async () => {
	// A word no other step uses, so exactly one event has it.
	const word = `xylophone${run}`;
	const { event_id: eventId } = await alice.sendMessage(roomId, { msgtype: MsgType.Text, body: `a ${word} to find` });
	// The index is written in the room commit, before the send answers.
	const res = await bob.search({ body: { search_categories: { room_events: { search_term: word } } } });
	const events = res.search_categories.room_events;
	assert.deepEqual(
		events.results.map((r) => r.result.event_id),
		[eventId],
		`bob's search for ${word}: ${JSON.stringify(events)}`,
	);
	assert.equal(events.count, 1);
	assert.equal(events.results[0].result.content.body, `a ${word} to find`);
	assert.equal(events.results[0].result.room_id, roomId);
	// And through the SDK's own search model.
	const model = await bob.searchRoomEvents({ term: word });
	assert.deepEqual(
		model.results.map((r) => r.context.getEvent().getId()),
		[eventId],
	);
});

test("alice sets the room name and topic; bob sees both", async () => {
	await alice.setRoomName(roomId, "renamed by alice");
	await alice.setRoomTopic(roomId, "the topic, set by alice");
	const room = bob.getRoom(roomId);
	const topic = () => room.currentState.getStateEvents(EventType.RoomTopic, "")?.getContent().topic;
	await waitUntil(
		bob,
		[RoomEvent.Name, RoomStateEvent.Events, RoomEvent.Timeline],
		() => room.name === "renamed by alice" && topic() === "the topic, set by alice",
		() => `bob's client to show the new name and topic (has name ${JSON.stringify(room.name)}, topic ${JSON.stringify(topic())})`,
	);
	assert.equal(room.currentState.getStateEvents(EventType.RoomName, "")?.getSender(), alice.getUserId());
});

// Typing and receipts: PUT /rooms/{roomId}/typing/{userId}, POST
// /rooms/{roomId}/receipt/... and their /sync ephemeral events (m.typing,
// m.receipt in rooms.join.*.ephemeral). A 404 M_UNRECOGNIZED means the
// endpoint is missing; a time-out after an accepted request means /sync did
// not deliver the ephemeral event (or did not wake the long-poll for it).
test("typing: alice types and bob sees it, then sees her stop", async () => {
	const aliceId = alice.getUserId();
	const member = () => bob.getRoom(roomId)?.getMember(aliceId);
	const typing = waitUntil(
		bob,
		[RoomMemberEvent.Typing],
		() => member()?.typing === true,
		"bob's client to see alice typing (RoomMember.typing; the PUT was accepted, so /sync carried no m.typing with her in it)",
	);
	await alice.sendTyping(roomId, true, 30_000);
	await typing;
	assert.deepEqual(
		bob
			.getRoom(roomId)
			.getMembers()
			.filter((m) => m.typing)
			.map((m) => m.userId),
		[aliceId],
	);

	const stopped = waitUntil(
		bob,
		[RoomMemberEvent.Typing],
		() => member()?.typing === false,
		"bob's client to see alice stop typing (an m.typing without her)",
	);
	await alice.sendTyping(roomId, false);
	await stopped;
});

test("read receipts: bob reads alice's message and alice sees it", async () => {
	// Bob has sent a message after alice's first one, which the SDK counts as
	// an implicit (synthetic) receipt; so alice sends a fresh message and bob
	// acknowledges that one, and only a real receipt from /sync passes.
	const ev = await sendAndSee(alice, bob, "read this one, bob");
	assert.ok(aliceMessageSeenByBob, "the earlier step saw alice's first message");
	const aliceRoom = alice.getRoom(roomId);
	const aliceEvent = aliceRoom.findEventById(ev.getId());
	assert.ok(aliceEvent, "alice's client has her own message");
	const bobId = bob.getUserId();

	const seen = waitUntil(
		alice,
		[RoomEvent.Receipt],
		() => aliceRoom.getReadReceiptForUserId(bobId, true)?.eventId === ev.getId(),
		() =>
			`alice's client to get bob's real m.read receipt for ${ev.getId()} (the POST was accepted, so /sync carried no ` +
			`m.receipt for it; alice's client has ${JSON.stringify(aliceRoom.getReadReceiptForUserId(bobId, true) ?? null)})`,
	);
	await bob.sendReadReceipt(ev, ReceiptType.Read);
	await seen;

	const receipts = aliceRoom.getReceiptsForEvent(aliceEvent);
	assert.ok(
		receipts.some((r) => r.userId === bobId && r.type === ReceiptType.Read && r.data?.ts > 0),
		`getReceiptsForEvent lists bob's m.read with a ts: ${JSON.stringify(receipts)}`,
	);
	assert.ok(aliceRoom.getUsersReadUpTo(aliceEvent).includes(bobId), "getUsersReadUpTo includes bob");
	assert.equal(aliceRoom.getEventReadUpTo(bobId, true), ev.getId(), "bob's read-up-to, real receipts only");
});

// Sticky events (MSC4354): alice sends a keyed sticky event for five
// minutes; bob's live client has it in its sticky map with an expiry about
// five minutes off. After more messages than any timeline limit here, a
// fresh client of bob syncing with a timeline limit of 2 still gets it,
// through the msc4354_sticky section and not the timeline.
test("sticky events: bob's clients get alice's keyed sticky event, beyond the timeline limit too", async () => {
	const aliceId = alice.getUserId();
	const type = "org.example.e2e.sticky";
	const stickyKey = `key-${run}`;
	const sentAt = Date.now();
	const { event_id: stickyId } = await alice._unstable_sendStickyEvent(roomId, 5 * 60_000, null, type, {
		msc4354_sticky_key: stickyKey,
		note: "sticky from alice",
	});
	assert.match(stickyId, /^\$/);
	const keyed = (client) => client.getRoom(roomId)?._unstable_getKeyedStickyEvent(aliceId, type, stickyKey);
	const ev = await waitUntil(
		bob,
		[RoomEvent.Timeline],
		() => (keyed(bob)?.getId() === stickyId ? keyed(bob) : undefined),
		"bob's client to expose alice's sticky event through _unstable_getKeyedStickyEvent",
	);
	assert.equal(ev.getContent().note, "sticky from alice");
	const expires = ev.unstableStickyExpiresAt;
	assert.ok(
		expires > sentAt + 4 * 60_000 && expires <= Date.now() + 5 * 60_000 + 5_000,
		`expiry ${expires} is not about five minutes after ${sentAt}`,
	);

	for (let i = 0; i < 25; i++) {
		await alice.sendMessage(roomId, { msgtype: MsgType.Text, body: `filler ${i}` });
	}
	await waitUntil(
		bob,
		[RoomEvent.Timeline],
		() => bob.getRoom(roomId)?.getLiveTimeline().getEvents().at(-1)?.getContent().body === "filler 24",
		"bob's live client to see the last filler message",
	);

	// A fresh client of bob (same device, empty store): look at what its
	// first /sync carried for the room.
	const seen = { sticky: false, timeline: false };
	const watching = fetchFor("bob-fresh");
	const fetchFn = async (input, init) => {
		const res = await watching(input, init);
		const url = new URL(input instanceof Request ? input.url : String(input));
		if (url.pathname.endsWith("/sync") && res.ok) {
			const body = await res.clone().json();
			const r = body.rooms?.join?.[roomId];
			seen.sticky ||= (r?.msc4354_sticky?.events ?? []).some((e) => e.event_id === stickyId);
			seen.timeline ||= (r?.timeline?.events ?? []).some((e) => e.event_id === stickyId);
		}
		return res;
	};
	const fresh = createClient({
		baseUrl: BASE,
		accessToken: bob.getAccessToken(),
		userId: bob.getUserId(),
		deviceId: bob.getDeviceId(),
		fetchFn,
	});
	try {
		await fresh.startClient({ initialSyncLimit: 2 });
		const freshEv = await waitUntil(
			fresh,
			[ClientEvent.Room, RoomEvent.Timeline],
			() => (keyed(fresh)?.getId() === stickyId ? keyed(fresh) : undefined),
			"bob's fresh client (timeline limit 2) to expose alice's sticky event",
		);
		assert.ok(freshEv.unstableStickyExpiresAt > Date.now(), "the fresh client's copy has not expired");
		assert.ok(seen.sticky, "the sticky event came in rooms.join.*.msc4354_sticky");
		assert.ok(!seen.timeline, "the sticky event came in the timeline too, past the limit of 2");
	} finally {
		fresh.stopClient();
	}
});

test("a push rule that mutes the room stops bob's notification count rising", async () => {
	const room = bob.getRoom(roomId);
	const count = () => room.getUnreadNotificationCount(NotificationCountType.Total);
	// Before the rule: a message of alice's raises it.
	const before = count();
	await sendAndSee(alice, bob, "this one notifies");
	const raised = await waitUntil(
		bob,
		[RoomEvent.UnreadNotifications],
		() => count() > before && count(),
		() => `bob's notification count to rise from ${before} (now ${count()})`,
	);
	// bob mutes the room (a room-kind rule, as Element's "mute" does).
	await bob.addPushRule("global", PushRuleKind.RoomSpecific, roomId, { actions: [] });
	const rules = await bob.getPushRules();
	assert.ok(
		rules.global.room?.some((r) => r.rule_id === roomId && r.actions.length === 0),
		`bob's room rules: ${JSON.stringify(rules.global.room)}`,
	);
	// The SDK applies a sync's notification counts to a room before it adds
	// the room's events ("so it's correct when any of the events fire"), so
	// once the message is in bob's live timeline the count the node sent with
	// it is in place. Waiting for a later sync instead raced: the sync could
	// land before alice's send returned, and the next one is a 30 s poll.
	const { event_id: mutedId } = await alice.sendMessage(roomId, { msgtype: MsgType.Text, body: "this one is muted" });
	await waitUntil(
		bob,
		[RoomEvent.Timeline],
		() => liveEvent(bob, mutedId),
		"alice's muted message in bob's live timeline",
	);
	assert.equal(count(), raised, "bob's notification count after a message in the muted room");
	// Unmuted again, a message counts again.
	await bob.deletePushRule("global", PushRuleKind.RoomSpecific, roomId);
	await sendAndSee(alice, bob, "notifies again");
	await waitUntil(
		bob,
		[RoomEvent.UnreadNotifications],
		() => count() > raised,
		() => `bob's notification count to rise from ${raised} once unmuted (now ${count()})`,
	);
});

test("bob leaves; both clients see his membership become leave", async () => {
	const bobId = bob.getUserId();
	const aliceRoom = alice.getRoom(roomId);
	const aliceSees = waitUntil(
		alice,
		[RoomStateEvent.Members, RoomMemberEvent.Membership],
		() => aliceRoom.getMember(bobId)?.membership === "leave",
		() => `alice's client to see bob's membership become leave (it is ${aliceRoom.getMember(bobId)?.membership})`,
	);
	const bobSees = waitUntil(
		bob,
		[RoomEvent.MyMembership, ClientEvent.Room],
		() => bob.getRoom(roomId)?.getMyMembership() === "leave",
		() => `bob's client to show the room as left (it shows ${bob.getRoom(roomId)?.getMyMembership()})`,
	);
	await bob.leave(roomId);
	await Promise.all([aliceSees, bobSees]);
	// The joined count comes from the room summary the node sends
	// (m.joined_member_count) once it has sent one; it must follow the leave.
	await waitUntil(
		alice,
		[RoomStateEvent.Members],
		() => aliceRoom.getJoinedMemberCount() === 1 && aliceRoom.getInvitedMemberCount() === 0,
		() =>
			`alice's room to count 1 joined, 0 invited after bob left (counts ${aliceRoom.getJoinedMemberCount()} joined, ` +
			`${aliceRoom.getInvitedMemberCount()} invited)`,
	);
});

test("neither client's /sync ever failed (no ERROR or RECONNECTING sync state)", () => {
	assert.deepEqual(syncTrouble, []);
});
