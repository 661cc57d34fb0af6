"""Coordination recipes on the client (Trio or asyncio, through AnyIO), one per module
(see docs/recipes.md).

| module | recipe |
| --- | --- |
| `lock` | exclusive lock (kazoo `Lock` layout), fencing tokens, revocation |
| `rwlock` | read/write lock (kazoo `ReadLock`/`WriteLock` layout) |
| `semaphore` | counting semaphore with leases (kazoo `Semaphore` layout) |
| `multilock` | several locks taken all or none |
| `election` | leader election running a task while leader (kazoo `Election` layout) |
| `leader_latch` | is-leader flag (Curator `LeaderLatch` layout) |
| `barrier`, `double_barrier` | barriers (kazoo layouts) |
| `counter` | compare-and-set counter (kazoo `Counter`, Curator `SharedCount` encodings) |
| `party` | group membership (kazoo `Party` layout) |
| `queue` | FIFO and priority queues (kazoo `Queue` layout) |
| `ack_queue` | work queue with acknowledgement, redelivery and idempotency keys |
| `service_discovery` | service registry, cache and providers (Curator discovery layout and JSON) |
| `node_cache`, `tree_cache` | caches on persistent (recursive) watches |
| `config` | configuration publish/subscribe that yields every version |
| `two_phase_commit` | two-phase commit (ZooKeeper's recipe) |
| `session` | a session that is re-opened after expiry, for recipes that must outlive one |

Recipes never start fire-and-forget tasks: those that need background work are async context
managers owning a task group.
"""
