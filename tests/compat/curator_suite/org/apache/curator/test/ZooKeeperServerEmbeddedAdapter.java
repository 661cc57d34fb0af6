package org.apache.curator.test;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * Put ahead of curator-test 5.9.0 on the class path by tests/compat/test_curator_suite.py, in
 * place of curator-test's class of this name: Curator's own tests start every server
 * (TestingServer, TestingCluster) through it, and this one starts each as a child process
 * instead of inside the test JVM, so the same tests run against either server:
 *
 *   -Dzksuite.server=zookeeper  Apache ZooKeeper's QuorumPeerMain (-Dzksuite.zkClasspath)
 *   -Dzksuite.server=zkserver   zkserver (-Dzksuite.python, -Dzksuite.pythonPath)
 *
 * Curator hands over the server's settings as Properties (what its in-process server would
 * read as zoo.cfg); they are written as a zoo.cfg next to the data directory. The rest of
 * curator-test (restart, stop, kill, the port, the data directory) is unchanged: it calls
 * start, kill, close and getClientPort here. What only an in-process server can offer
 * (getServerCnxnFactory) is null.
 */
public class ZooKeeperServerEmbeddedAdapter implements ZooKeeperMainFace {
    private static final long START_MS = 60_000;

    private volatile Process process;
    private volatile int clientPort;

    @Override
    public void start(QuorumPeerConfigBuilder configBuilder) {
        try {
            Properties properties = configBuilder.buildProperties();
            clientPort = Integer.parseInt(properties.getProperty("clientPort"));
            if (clientPort == 0) {
                // Curator's "any port": its in-process server binds port 0 and reports the port
                // it got; a child process is given a free port picked here instead.
                try (ServerSocket socket = new ServerSocket(0)) {
                    clientPort = socket.getLocalPort();
                }
                properties.setProperty("clientPort", Integer.toString(clientPort));
            }
            File dataDir = new File(properties.getProperty("dataDir"));
            dataDir.mkdirs();
            properties.putIfAbsent("admin.enableServer", "false");
            // Tests tune their in-process server with system properties (e.g.
            // znode.container.checkIntervalMs, zookeeper.extendedTypesEnabled): ZooKeeper's child
            // process gets them as the same -D flags, zkserver as zoo.cfg keys (it reads both).
            Properties tuning = new Properties();
            for (String name : System.getProperties().stringPropertyNames()) {
                if (name.startsWith("znode.") || name.startsWith("zookeeper.")) {
                    tuning.setProperty(name, System.getProperty(name));
                }
            }
            boolean zkserver = System.getProperty("zksuite.server", "zookeeper").equals("zkserver");
            if (zkserver) {
                tuning.forEach(properties::putIfAbsent);
            }
            File cfg = new File(dataDir.getParentFile(), dataDir.getName() + ".zoo.cfg");
            try (OutputStream out = new FileOutputStream(cfg)) {
                properties.store(out, "written by the zkserver test suite's Curator shim");
            }
            boolean cluster = properties.stringPropertyNames().stream().anyMatch(k -> k.startsWith("server."));
            process = launch(zkserver, tuning, cfg, new File(dataDir.getParentFile(), dataDir.getName() + ".out.log"));
            waitUntilUp(cluster);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new FailedServerStartException(e);
        }
    }

    private Process launch(boolean zkserver, Properties tuning, File cfg, File log) throws IOException {
        List<String> command = new ArrayList<>();
        ProcessBuilder builder = new ProcessBuilder(command);
        if (zkserver) {
            command.add(System.getProperty("zksuite.python", "python3"));
            command.add("-m");
            command.add("zkserver");
            builder.environment().put("PYTHONPATH", System.getProperty("zksuite.pythonPath", ""));
        } else {
            command.add("java");
            command.add("-Xmx256m");
            for (String name : tuning.stringPropertyNames()) {
                command.add("-D" + name + "=" + tuning.getProperty(name));
            }
            command.add("-Dzookeeper.log.dir=" + cfg.getParent());
            command.add("-Dlogback.configurationFile=" + System.getProperty("zksuite.zkLogback", ""));
            command.add("-cp");
            command.add(System.getProperty("zksuite.zkClasspath"));
            command.add("org.apache.zookeeper.server.quorum.QuorumPeerMain");
        }
        command.add(cfg.getPath());
        builder.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log));
        return builder.start();
    }

    /** A standalone server is up when it answers srvr with its mode (it serves); an ensemble
     *  member when its client port listens (it cannot serve before the others start). */
    private void waitUntilUp(boolean cluster) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(START_MS);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IOException("the server exited with status " + process.exitValue());
            }
            String answer = srvr();
            if (answer != null && (cluster || answer.contains("Mode: "))) {
                return;
            }
            Thread.sleep(50);
        }
        kill();
        throw new IOException("the server did not start on port " + clientPort);
    }

    private String srvr() {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", clientPort), 1000);
            socket.setSoTimeout(2000);
            socket.getOutputStream().write("srvr".getBytes(StandardCharsets.US_ASCII));
            InputStream in = socket.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public int getClientPort() {
        return clientPort;
    }

    public org.apache.zookeeper.server.ServerCnxnFactory getServerCnxnFactory() {
        return null;
    }

    @Override
    public void kill() {
        Process p = process;
        if (p != null) {
            p.destroyForcibly();
            waitFor(p);
        }
    }

    @Override
    public void close() {
        Process p = process;
        if (p != null) {
            p.destroy();
            try {
                if (!p.waitFor(10, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
            waitFor(p);
        }
    }

    private static void waitFor(Process p) {
        try {
            p.waitFor(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
