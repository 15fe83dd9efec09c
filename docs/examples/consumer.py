#!/usr/bin/env python3
"""A small consumer of the records rtm2kafka writes, with confluent-kafka.

It reads the message topics and the events topic in a consumer group, drops
the duplicates that at-least-once delivery produces, and prints each record
once, as one line:

    <dedupe key> TAB <topic> TAB <record value>

The dedupe key is m/<scope>/<from>/<to>/<mid> for a message and
e/<rtm-event-id> for an event, both read from the rtm-* headers (see
docs/consuming.md). A record with neither is printed with an empty key and
never dropped.

    python3 -m pip install -r docs/examples/requirements.txt
    python3 docs/examples/consumer.py --brokers 127.0.0.1:19092 --prefix rtm --group my-team

With --until-end it stops once it has read every partition up to the end it
saw at start (what integration/consumer_examples_test.go uses). Offsets are
committed after the records are printed, so a crash repeats records rather
than losing them; the in-memory dedupe window does not survive a restart.
"""

import argparse
import collections
import json
import os
import re
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition


def dedupe_key(headers):
    """The identity of the push a record came from, from its headers."""
    h = {}
    for k, v in headers or []:
        if k.startswith("rtm-") and v is not None:
            h[k] = v.decode("ascii", "replace")
    scope = h.get("rtm-scope", "")
    if scope == "event" and h.get("rtm-event-id"):
        return "e/" + h["rtm-event-id"]
    if scope and scope != "event" and h.get("rtm-mid"):
        return "m/%s/%s/%s/%s" % (scope, h.get("rtm-from", ""), h.get("rtm-to", ""), h["rtm-mid"])
    return ""


class Dedupe:
    """Remembers keys for a window of record time, and at most max_keys."""

    def __init__(self, window_ms, max_keys):
        self.window_ms = window_ms
        self.max_keys = max_keys
        self.keys = set()
        self.fifo = collections.deque()  # (key, timestamp ms), oldest first

    def add(self, key, ts_ms):
        """True when key is new (and now remembered), False for a duplicate."""
        while self.fifo and ts_ms - self.fifo[0][1] > self.window_ms:
            self.keys.discard(self.fifo.popleft()[0])
        if key in self.keys:
            return False
        while self.fifo and len(self.keys) >= self.max_keys:
            self.keys.discard(self.fifo.popleft()[0])
        self.keys.add(key)
        self.fifo.append((key, ts_ms))
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:19092"))
    ap.add_argument("--prefix", default=os.environ.get("KAFKA_TOPIC_PREFIX", "rtm"))
    ap.add_argument("--group", default="rtm-consumer-example")
    ap.add_argument("--window-hours", type=float, default=24.0, help="keep dedupe keys this long (record time)")
    ap.add_argument("--max-keys", type=int, default=1_000_000)
    ap.add_argument("--until-end", action="store_true", help="stop at the end offsets seen at start")
    args = ap.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,  # commit only what was printed
    })
    try:
        run(consumer, args)
    finally:
        consumer.close()


def run(consumer, args):
    # The message topics and the events topic that exist now.
    pattern = re.compile(r"^%s\.((p2p|group|room)\.(chat|audio|cmd|file|message)|events)$" % re.escape(args.prefix))
    md = consumer.list_topics(timeout=30)
    topics = sorted(t for t in md.topics if pattern.match(t))
    if not topics:
        sys.exit("consumer.py: no rtm topics with prefix %r on %s: is a bridge running?" % (args.prefix, args.brokers))

    # End offsets per partition, for --until-end.
    ends = {}
    for t in topics:
        for p in md.topics[t].partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=30)
            if high > 0:
                ends[(t, p)] = high

    consumer.subscribe(topics)
    seen = Dedupe(int(args.window_hours * 3600 * 1000), args.max_keys)
    printed = dropped = 0
    out = sys.stdout
    while not (args.until_end and not ends):
        msgs = consumer.consume(num_messages=500, timeout=1.0)
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
            tp = (m.topic(), m.partition())
            if tp in ends and m.offset() + 1 >= ends[tp]:
                del ends[tp]
            key = dedupe_key(m.headers())
            if key and not seen.add(key, m.timestamp()[1]):
                dropped += 1
                continue
            printed += 1
            out.write("%s\t%s\t%s\n" % (key, m.topic(), m.value().decode("utf-8")))
        if msgs:
            out.flush()
            consumer.commit(asynchronous=False)
    print(json.dumps({"printed": printed, "duplicates_dropped": dropped}), file=sys.stderr)


if __name__ == "__main__":
    main()
