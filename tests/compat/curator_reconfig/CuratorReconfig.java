import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.CuratorEvent;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.data.Stat;

/**
 * Curator's reconfig API against a 3-server ensemble with reconfigEnabled and a super user
 * (super:test): getConfig (plain, with a Stat, with a watcher, in the background) and reconfig
 * (joining, leaving, withNewMembers, fromConfig; in the foreground and in the background), and
 * the errors a bad reconfig gets.
 *
 * Usage: CuratorReconfig CONNECT_STRING PORT_BASE. Servers of the test's layout have client
 * ports BASE+i, quorum ports BASE+100+i and election ports BASE+200+i; the program prints
 * ports as C<i>, Q<i>, E<i> and configuration versions as V0, V1, ... in the order first seen,
 * so the output of one run against zkserver and one against Apache ZooKeeper can be compared
 * line for line. Each printed line is one fact; a configuration's server lines are printed
 * sorted.
 */
public class CuratorReconfig {
    private static int base;
    private static final List<String> versions = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        base = Integer.parseInt(args[1]);
        CuratorFramework admin = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .retryPolicy(new RetryOneTime(500))
                .authorization("digest", "super:test".getBytes(StandardCharsets.UTF_8))
                .build();
        CuratorFramework plain = CuratorFrameworkFactory.newClient(connect, new RetryOneTime(500));
        admin.start();
        plain.start();
        try {
            if (!admin.blockUntilConnected(60, TimeUnit.SECONDS)
                    || !plain.blockUntilConnected(60, TimeUnit.SECONDS)) {
                throw new IllegalStateException("not connected");
            }
            run(admin, plain);
        } finally {
            plain.close();
            admin.close();
        }
    }

    private static void run(CuratorFramework admin, CuratorFramework plain) throws Exception {
        Stat stat = new Stat();
        byte[] config = admin.getConfig().storingStatIn(stat).forEnsemble();
        long v0 = version(config);
        show("getConfig", config, stat);
        say("plain client reads the same: "
                + new String(plain.getConfig().forEnsemble(), StandardCharsets.UTF_8)
                        .equals(new String(config, StandardCharsets.UTF_8)));

        // A watcher on the configuration, then an observer joins (from the current version).
        BlockingQueue<WatchedEvent> events = new LinkedBlockingQueue<>();
        admin.getConfig().usingWatcher((org.apache.zookeeper.Watcher) events::add).forEnsemble();
        String observer = spec(40, "observer");
        Stat joined = new Stat();
        byte[] after = admin.reconfig().joining(observer).storingStatIn(joined).fromConfig(v0)
                .forEnsemble();
        show("reconfig joining observer fromConfig current", after, joined);
        WatchedEvent event = events.poll(30, TimeUnit.SECONDS);
        say("watcher: " + (event == null ? "nothing"
                : event.getType() + " " + event.getPath()));

        // The version it joined at is gone now.
        expectError("reconfig leaving fromConfig stale",
                () -> admin.reconfig().leaving("40").fromConfig(v0).forEnsemble());
        byte[] left = admin.reconfig().leaving("40").forEnsemble();
        show("reconfig leaving observer", left, null);

        // The whole membership again, as new members (and an observer), in the background.
        List<String> members = new ArrayList<>();
        for (String line : lines(left)) {
            if (line.startsWith("server.")) {
                members.add(line);
            }
        }
        members.add(spec(41, "observer"));
        BlockingQueue<CuratorEvent> done = new LinkedBlockingQueue<>();
        admin.reconfig().inBackground((client, e) -> done.add(e)).withNewMembers(members)
                .forEnsemble();
        CuratorEvent background = done.poll(30, TimeUnit.SECONDS);
        if (background == null) {
            say("background reconfig: no callback");
        } else {
            say("background reconfig: " + background.getType() + " rc="
                    + KeeperException.Code.get(background.getResultCode()));
            show("background reconfig data", background.getData(), background.getStat());
        }
        BlockingQueue<CuratorEvent> read = new LinkedBlockingQueue<>();
        admin.getConfig().inBackground((client, e) -> read.add(e)).forEnsemble();
        CuratorEvent got = read.poll(30, TimeUnit.SECONDS);
        say("background getConfig: " + (got == null ? "no callback" : got.getType()));
        if (got != null) {
            show("background getConfig data", got.getData(), got.getStat());
        }
        show("reconfig leaving 41", admin.reconfig().leaving("41").forEnsemble(), null);

        // What a bad reconfig gets.
        expectError("plain client reconfig",
                () -> plain.reconfig().joining(spec(42, "observer")).forEnsemble());
        expectError("reconfig joining garbage",
                () -> admin.reconfig().joining("some thing").forEnsemble());
        expectError("reconfig leaving every voter",
                () -> admin.reconfig().leaving("1", "2", "3").forEnsemble());
        expectError("reconfig three voters that are not running",
                () -> admin.reconfig().joining(spec(43, "participant"),
                        spec(44, "participant"), spec(45, "participant")).forEnsemble());
        show("getConfig at the end", admin.getConfig().forEnsemble(), null);
    }

    interface Call {
        Object call() throws Exception;
    }

    private static void expectError(String what, Call call) {
        try {
            call.call();
            say(what + ": no error");
        } catch (KeeperException e) {
            say(what + ": " + e.getClass().getSimpleName() + " " + e.code());
        } catch (Exception e) {
            say(what + ": " + e.getClass().getName());
        }
    }

    private static String spec(int id, String role) {
        return "server." + id + "=127.0.0.1:" + (base + 100 + id) + ":" + (base + 200 + id) + ":"
                + role + ";127.0.0.1:" + (base + id);
    }

    private static List<String> lines(byte[] config) {
        List<String> out = new ArrayList<>();
        for (String line : new String(config, StandardCharsets.UTF_8).split("\n")) {
            out.add(line);
        }
        return out;
    }

    private static long version(byte[] config) {
        for (String line : lines(config)) {
            if (line.startsWith("version=")) {
                return Long.parseLong(line.substring("version=".length()), 16);
            }
        }
        throw new IllegalStateException("no version in " + new String(config));
    }

    private static void show(String what, byte[] config, Stat stat) {
        if (config == null) {
            say(what + ": null");
            return;
        }
        // Sorted, version last: ZooKeeper's followers may list the servers in another order
        // than its leader did (the same lines), so the order is not compared.
        List<String> sorted = lines(config);
        sorted.sort((a, b) -> a.startsWith("version=") ? 1 : b.startsWith("version=") ? -1
                : a.compareTo(b));
        for (String line : sorted) {
            say(what + ": " + symbolic(line));
        }
        if (stat != null) {
            long v = version(config);
            say(what + " stat: mzxid is the version " + (stat.getMzxid() == v)
                    + ", version " + stat.getVersion() + ", dataLength is the length "
                    + (stat.getDataLength() == config.length) + ", czxid " + stat.getCzxid()
                    + ", numChildren " + stat.getNumChildren());
        }
    }

    private static final Pattern PORT = Pattern.compile(":(\\d{4,5})");
    private static final Pattern VERSION = Pattern.compile("^version=([0-9a-f]+)$");

    private static String symbolic(String line) {
        Matcher v = VERSION.matcher(line);
        if (v.matches()) {
            String hex = v.group(1);
            if (!versions.contains(hex)) {
                versions.add(hex);
            }
            return "version=V" + versions.indexOf(hex);
        }
        Matcher m = PORT.matcher(line);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            int port = Integer.parseInt(m.group(1));
            String name = m.group();
            for (int off = 0; off <= 200; off += 100) {
                int i = port - base - off;
                if (i >= 1 && i <= 99) {
                    name = ":" + (off == 0 ? "C" : off == 100 ? "Q" : "E") + i;
                    break;
                }
            }
            m.appendReplacement(out, Matcher.quoteReplacement(name));
        }
        m.appendTail(out);
        return out.toString();
    }

    private static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
