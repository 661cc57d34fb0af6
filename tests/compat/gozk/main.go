// Command gozk exercises a ZooKeeper server through the go-zookeeper/zk client: digest auth,
// ACLs, children, watches, multi and the lock recipe. tests/compat/test_go_client.py runs it
// against zkserver and against Apache ZooKeeper and compares the reports.
//
//	gozk HOST:PORT
//
// Each check prints one line, "PASS name" or "FAIL name: reason", and runs under a deadline,
// so a server that never answers (the client waits forever for an xid) fails the check instead
// of hanging the program.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"reflect"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"
)

const deadline = 20 * time.Second

type check struct {
	name string
	run  func(server, root string) error
}

var checks = []check{
	{"auth", checkAuth},
	{"acl", checkACL},
	{"children", checkChildren},
	{"watch", checkWatch},
	{"multi", checkMulti},
	{"lock", checkLock},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gozk HOST:PORT")
		os.Exit(2)
	}
	server := os.Args[1]
	failed := 0
	for _, c := range checks {
		done := make(chan error, 1)
		root := fmt.Sprintf("/gozk-%s-%d", c.name, time.Now().UnixNano())
		go func() { done <- c.run(server, root) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(deadline):
			err = errors.New("no answer before the deadline")
		}
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", c.name, err)
		} else {
			fmt.Printf("PASS %s\n", c.name)
		}
	}
	fmt.Printf("%d passed, %d failed\n", len(checks)-failed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func connect(server string) (*zk.Conn, error) {
	conn, events, err := zk.Connect([]string{server}, 10*time.Second,
		zk.WithLogger(log.New(io.Discard, "", 0)))
	if err != nil {
		return nil, err
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn, nil
			}
		case <-timeout:
			conn.Close()
			return nil, errors.New("no session within 10s")
		}
	}
}

func expect(what string, got, want error) error {
	if !errors.Is(got, want) {
		return fmt.Errorf("%s: got %v, want %v", what, got, want)
	}
	return nil
}

func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var open = zk.WorldACL(zk.PermAll)

// addAuth is sent with an ordinary positive xid; a server that answers -4 hangs the client.
func checkAuth(server, root string) error {
	owner, err := connect(server)
	if err != nil {
		return err
	}
	defer owner.Close()
	other, err := connect(server)
	if err != nil {
		return err
	}
	defer other.Close()
	if _, err := owner.Create(root, nil, 0, open); err != nil {
		return err
	}
	if err := owner.AddAuth("digest", []byte("u1:pw1")); err != nil {
		return fmt.Errorf("addauth: %w", err)
	}
	if err := owner.AddAuth("digest", []byte("u1:pw1")); err != nil { // twice: still fine
		return fmt.Errorf("second addauth: %w", err)
	}
	secret := root + "/secret"
	if _, err := owner.Create(secret, []byte("s"), 0, zk.DigestACL(zk.PermAll, "u1", "pw1")); err != nil {
		return err
	}
	if data, _, err := owner.Get(secret); err != nil || string(data) != "s" {
		return fmt.Errorf("owner get: %q %v", data, err)
	}
	_, _, err = other.Get(secret)
	if err := expect("get without auth", err, zk.ErrNoAuth); err != nil {
		return err
	}
	if err := other.AddAuth("digest", []byte("u1:wrong")); err != nil {
		return fmt.Errorf("addauth with a wrong password: %w", err)
	}
	_, _, err = other.Get(secret)
	if err := expect("get with the wrong password", err, zk.ErrNoAuth); err != nil {
		return err
	}
	if err := other.AddAuth("digest", []byte("u1:pw1")); err != nil {
		return fmt.Errorf("addauth: %w", err)
	}
	if _, err := other.Set(secret, []byte("t"), -1); err != nil {
		return fmt.Errorf("set after auth: %w", err)
	}
	// the connection goes on after auth: more requests, then an auth ACL
	if _, err := other.Create(root+"/mine", nil, 0, zk.AuthACL(zk.PermAll)); err != nil {
		return fmt.Errorf("create with an auth ACL: %w", err)
	}
	acl, _, err := owner.GetACL(root + "/mine")
	if err != nil {
		return err
	}
	if len(acl) != 2 || acl[0].Scheme != "digest" {
		return fmt.Errorf("auth ACL expanded to %v", acl)
	}
	return nil
}

func checkACL(server, root string) error {
	c, err := connect(server)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Create(root, nil, 0, open); err != nil {
		return err
	}
	ro := root + "/ro"
	if _, err := c.Create(ro, []byte("x"), 0, zk.WorldACL(zk.PermRead)); err != nil {
		return err
	}
	_, err = c.Set(ro, []byte("y"), -1)
	if err := expect("set on a read-only node", err, zk.ErrNoAuth); err != nil {
		return err
	}
	_, err = c.Create(ro+"/kid", nil, 0, open)
	if err := expect("create under a read-only node", err, zk.ErrNoAuth); err != nil {
		return err
	}
	acl, stat, err := c.GetACL(ro)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(acl, zk.WorldACL(zk.PermRead)) || stat.Aversion != 0 {
		return fmt.Errorf("getACL: %v aversion %d", acl, stat.Aversion)
	}
	open2 := root + "/open"
	if _, err := c.Create(open2, nil, 0, open); err != nil {
		return err
	}
	_, err = c.SetACL(open2, zk.WorldACL(zk.PermRead|zk.PermAdmin), 5)
	if err := expect("setACL with a wrong version", err, zk.ErrBadVersion); err != nil {
		return err
	}
	if stat, err = c.SetACL(open2, zk.WorldACL(zk.PermRead|zk.PermAdmin), 0); err != nil {
		return err
	}
	if stat.Aversion != 1 {
		return fmt.Errorf("aversion after setACL: %d", stat.Aversion)
	}
	_, err = c.Create(root+"/authless", nil, 0, zk.AuthACL(zk.PermAll))
	return expect("auth ACL without an identity", err, zk.ErrInvalidACL)
}

func checkChildren(server, root string) error {
	c, err := connect(server)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Create(root, nil, 0, open); err != nil {
		return err
	}
	want := []string{"a", "b", "c"}
	for _, name := range want {
		if _, err := c.Create(root+"/"+name, nil, 0, open); err != nil {
			return err
		}
	}
	seq, err := c.Create(root+"/s-", nil, zk.FlagSequence, open)
	if err != nil {
		return err
	}
	if seq != root+"/s-0000000003" {
		return fmt.Errorf("sequential name %q", seq)
	}
	eph, err := c.Create(root+"/e", nil, zk.FlagEphemeral, open)
	if err != nil || eph != root+"/e" {
		return fmt.Errorf("ephemeral: %q %v", eph, err)
	}
	kids, stat, ch, err := c.ChildrenW(root)
	if err != nil {
		return err
	}
	sort.Strings(kids)
	if !reflect.DeepEqual(kids, []string{"a", "b", "c", "e", "s-0000000003"}) {
		return fmt.Errorf("children %v", kids)
	}
	if stat.NumChildren != 5 || stat.Cversion != 5 {
		return fmt.Errorf("stat %+v", stat)
	}
	if err := c.Delete(root+"/a", -1); err != nil {
		return err
	}
	ev := <-ch
	if ev.Type != zk.EventNodeChildrenChanged || ev.Path != root {
		return fmt.Errorf("event %+v", ev)
	}
	err = c.Delete(root, -1)
	if err := expect("delete a node with children", err, zk.ErrNotEmpty); err != nil {
		return err
	}
	_, _, err = c.Children(root + "/missing")
	return expect("children of a missing node", err, zk.ErrNoNode)
}

func checkWatch(server, root string) error {
	c, err := connect(server)
	if err != nil {
		return err
	}
	defer c.Close()
	w, err := connect(server)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := c.Create(root, []byte("v0"), 0, open); err != nil {
		return err
	}
	_, _, data, err := w.GetW(root)
	if err != nil {
		return err
	}
	node := root + "/n"
	exists, _, created, err := w.ExistsW(node)
	if err != nil || exists {
		return fmt.Errorf("existsW: %v %v", exists, err)
	}
	if _, err := c.Set(root, []byte("v1"), 0); err != nil {
		return err
	}
	if ev := <-data; ev.Type != zk.EventNodeDataChanged || ev.Path != root {
		return fmt.Errorf("data event %+v", ev)
	}
	if _, err := c.Create(node, nil, 0, open); err != nil {
		return err
	}
	if ev := <-created; ev.Type != zk.EventNodeCreated || ev.Path != node {
		return fmt.Errorf("created event %+v", ev)
	}
	_, _, deleted, err := w.GetW(node)
	if err != nil {
		return err
	}
	if err := c.Delete(node, -1); err != nil {
		return err
	}
	if ev := <-deleted; ev.Type != zk.EventNodeDeleted || ev.Path != node {
		return fmt.Errorf("deleted event %+v", ev)
	}
	// one-time: a second change of root fires nothing on the used watch; a fresh one does
	_, _, again, err := w.GetW(root)
	if err != nil {
		return err
	}
	if _, err := c.Set(root, []byte("v2"), -1); err != nil {
		return err
	}
	if ev := <-again; ev.Type != zk.EventNodeDataChanged {
		return fmt.Errorf("second data event %+v", ev)
	}
	return nil
}

func checkMulti(server, root string) error {
	c, err := connect(server)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Create(root, nil, 0, open); err != nil {
		return err
	}
	res, err := c.Multi(
		&zk.CreateRequest{Path: root + "/x", Data: []byte("1"), Acl: open},
		&zk.SetDataRequest{Path: root + "/x", Data: []byte("2"), Version: 0},
		&zk.CheckVersionRequest{Path: root + "/x", Version: 1},
		&zk.CreateRequest{Path: root + "/y", Acl: open, Flags: zk.FlagSequence},
	)
	if err != nil {
		return fmt.Errorf("multi: %w", err)
	}
	if len(res) != 4 || res[0].String != root+"/x" || res[3].String != root+"/y0000000001" {
		return fmt.Errorf("multi results %+v", res)
	}
	data, stat, err := c.Get(root + "/x")
	if err != nil || string(data) != "2" || stat.Version != 1 {
		return fmt.Errorf("after multi: %q %+v %v", data, stat, err)
	}
	res, err = c.Multi(
		&zk.SetDataRequest{Path: root + "/x", Data: []byte("3"), Version: -1},
		&zk.CheckVersionRequest{Path: root + "/x", Version: 7},
		&zk.DeleteRequest{Path: root + "/y0000000001", Version: -1},
	)
	if err == nil {
		return errors.New("a multi with a failing check succeeded")
	}
	if len(res) != 3 || !errors.Is(res[1].Error, zk.ErrBadVersion) {
		return fmt.Errorf("failed multi results %+v (%v)", res, err)
	}
	data, _, err = c.Get(root + "/x")
	if err != nil || string(data) != "2" {
		return fmt.Errorf("a failed multi changed the node: %q %v", data, err)
	}
	if ok, _, err := c.Exists(root + "/y0000000001"); err != nil || !ok {
		return fmt.Errorf("a failed multi deleted a node: %v %v", ok, err)
	}
	return nil
}

func checkLock(server, root string) error {
	a, err := connect(server)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := connect(server)
	if err != nil {
		return err
	}
	defer b.Close()
	if _, err := a.Create(root, nil, 0, open); err != nil {
		return err
	}
	path := root + "/lock"
	la, lb := zk.NewLock(a, path, open), zk.NewLock(b, path, open)
	if err := la.Lock(); err != nil {
		return fmt.Errorf("first lock: %w", err)
	}
	got := make(chan error, 1)
	go func() { got <- lb.Lock() }()
	select {
	case err := <-got:
		return fmt.Errorf("second lock taken while the first is held (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	kids, _, err := a.Children(path)
	if err != nil || len(kids) != 2 {
		return fmt.Errorf("lock nodes %v %v", kids, err)
	}
	if err := la.Unlock(); err != nil {
		return err
	}
	if err := <-got; err != nil {
		return fmt.Errorf("second lock: %w", err)
	}
	if err := lb.Unlock(); err != nil {
		return err
	}
	kids, _, err = a.Children(path)
	if err != nil || len(kids) != 0 {
		return fmt.Errorf("lock nodes left %v %v", kids, err)
	}
	// a lock held by a session that ends is released (its node is ephemeral)
	if err := la.Lock(); err != nil {
		return err
	}
	go func() { got <- lb.Lock() }()
	a.Close()
	if err := <-got; err != nil {
		return fmt.Errorf("lock after the holder's session ended: %w", err)
	}
	return first(lb.Unlock())
}
