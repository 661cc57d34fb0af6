package zk

// Added to go-zookeeper/zk's own test package by tests/compat/test_go_client_suite.py: the
// suite's cluster helper waits for its servers with FLWSrvr, whose pattern expects the build
// date as ZooKeeper 3.5/3.6 printed it ("built on 03/06/2020 ..."); 3.7 and later print
// "built on 2026-02-11 20:18 UTC", so the helper never sees a 3.9 server (or zkserver, which
// answers as 3.9) come up. This waits for what the helper meant: every server answering srvr
// with a Mode line.

import (
	"strings"
	"time"
)

func suiteServersServing(servers []string, timeout time.Duration) bool {
	for _, server := range FormatServers(servers) {
		response, err := fourLetterWord(server, "srvr", timeout)
		if err != nil || !strings.Contains(string(response), "\nMode: ") {
			return false
		}
	}
	return true
}
