"""Several independent zkresumelb instances agree on where a class goes, with default
settings: 3 LBs, 30 workers (one zkworker --processes=30), 10 classes. An LB that sees
other LBs registered places a new class by consistent hashing of the worker names
(--placement=auto; docs/design.md, "Placing new classes"), so every LB gives it to the same
worker before any résumé is exchanged; once workers report résumés the agreement holds,
because each résumé lists the classes that worker was given. Alone again, an LB goes back
to the least recently used worker."""
import collections
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zk_harness  # noqa: E402
from supervisor_harness import start_master  # noqa: E402
from zk_lb_harness import start_zklb  # noqa: E402
from harness import wait_for  # noqa: E402

N_WORKERS = 30
CLASSES = [f"site{i}.example" for i in range(10)]


class ZkAgreementTest(zk_harness.ZooKeeperTestCase):
    zk_tick_time = 500

    def top_workers(self, lbs, rounds=3):
        """For each class, the worker pid that served most of `rounds` requests, per LB.
        Requests go one at a time, LBs and classes interleaved (backlog <= 1: no overflow)."""
        served = collections.defaultdict(collections.Counter)  # (lb index, class) -> pids
        for _ in range(rounds):
            for cls in CLASSES:
                for i, lb in enumerate(lbs):
                    served[(i, cls)][lb.pid_of_answer(host=cls)] += 1
        return {cls: [served[(i, cls)].most_common(1)[0][0] for i in range(len(lbs))]
                for cls in CLASSES}

    def agreeing(self, tops):
        return [cls for cls, pids in tops.items() if len(set(pids)) == 1]

    def test_three_lbs_send_each_class_to_the_same_worker(self):
        root = "/agree"
        self.zk_server.create_tree(root)
        hosts = self.zk_server.connection_string
        m = start_master(self.sandbox, N_WORKERS,
                         ["--zookeeper=" + hosts, "--path=" + root + "/workers"],
                         address="127.0.0.1:0")
        names = sorted(s["process"]["address"] for s in m.status()["slots"])
        self.assertEqual(len(set(names)), N_WORKERS)
        lbs = [start_zklb(self.sandbox, hosts, root, name=f"lb{i}") for i in range(3)]
        for lb in lbs:
            lb.wait_pool(names, timeout=60)
            self.assertEqual(lb.status()["pool"]["kind"], "balanced")  # the default
            wait_for(lambda lb=lb: lb.status()["pool"]["placement"] == "ring", 15,
                     message="the LB to see the other two and place by hashing")

        # Warm-up, then the top worker of each class at each LB. With the default history
        # (9999) no worker has sent a résumé yet: agreement comes from placement alone.
        self.top_workers(lbs, rounds=2)
        tops = self.top_workers(lbs)
        agree = self.agreeing(tops)
        self.assertGreaterEqual(len(agree), 9, f"top worker per class at each LB: {tops}")
        used = {pids[0] for pids in tops.values()}
        self.assertGreaterEqual(len(used), 5, f"10 classes crowded on {len(used)} workers")

        # Résumés every 5 requests: each LB now learns every worker's real skills, and the
        # classes stay where they are.
        self.zk_server.set_json(root + "/workers", {"history": 5})
        def resumes_everywhere():
            self.top_workers(lbs, rounds=1)  # traffic: a résumé follows every 5th request
            return all(any(d["resume_size"] > 0 for d in lb.status()["worker_details"])
                       for lb in lbs)
        wait_for(resumes_everywhere, 60, message="résumés at every LB")
        self.top_workers(lbs, rounds=2)
        after = self.top_workers(lbs)
        self.assertGreaterEqual(len(self.agreeing(after)), 9, f"after résumés: {after}")
        same = sum(after[cls][0] == tops[cls][0] for cls in CLASSES)
        self.assertGreaterEqual(same, 9, f"classes moved: before {tops}, after {after}")

        # The other two stop: the last one alone spreads new classes by its LRU order.
        for lb in lbs[1:]:
            self.assertEqual(lb.proc.stop(), 0)
        wait_for(lambda: lbs[0].status()["pool"]["placement"] == "lru", 15,
                 message="the lone LB back to the LRU rule")


if __name__ == "__main__":
    unittest.main()
