"""Unit tests of consumer.py's dedupe logic; run by integration/consumer_examples_test.go:

    python3 -m unittest discover -s docs/examples -p 'test_*.py'
"""

import unittest

import consumer


class DedupeTest(unittest.TestCase):
    def test_window(self):
        d = consumer.Dedupe(window_ms=60_000, max_keys=100)
        self.assertTrue(d.add("a", 0))
        self.assertFalse(d.add("a", 30_000), "a copy within the window is a duplicate")
        self.assertTrue(d.add("b", 50_000))
        self.assertFalse(d.add("a", 0), "a late copy with an old timestamp, still inside the window")
        self.assertTrue(d.add("c", 61_000))
        self.assertTrue(d.add("a", 62_000), "a copy older than the window counts as new")
        self.assertFalse(d.add("b", 62_000))

    def test_max_keys(self):
        d = consumer.Dedupe(window_ms=3_600_000, max_keys=2)
        for k in "abc":
            self.assertTrue(d.add(k, 0))
        self.assertEqual(len(d.keys), 2)
        self.assertFalse(d.add("c", 0))
        self.assertFalse(d.add("b", 0))
        self.assertTrue(d.add("a", 0), "a was evicted, the oldest")


class DedupeKeyTest(unittest.TestCase):
    def test_keys(self):
        h = lambda *kv: [(kv[i], kv[i + 1].encode()) for i in range(0, len(kv), 2)]
        self.assertEqual(consumer.dedupe_key(h("rtm-scope", "p2p", "rtm-from", "1", "rtm-to", "2", "rtm-mid", "3")), "m/p2p/1/2/3")
        self.assertEqual(consumer.dedupe_key(h("rtm-scope", "event", "rtm-to", "5", "rtm-event-id", "00ff")), "e/00ff")
        self.assertEqual(consumer.dedupe_key(h("rtm-scope", "event", "rtm-to", "5")), "")
        self.assertEqual(consumer.dedupe_key(None), "")


if __name__ == "__main__":
    unittest.main()
