import java.io.File;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The client half of tests/compat/test_kafka.py, with Kafka's own Java producer and consumer.
 *
 *   produce BOOTSTRAP TOPIC STOP_FILE [PAUSE_MS]
 *     sends "0", "1", "2", ... (key = value) with acks=all and idempotence until STOP_FILE
 *     exists, then flushes. Prints "A n ms" when n is acknowledged (ms since start: the test
 *     reads the gaps around each fault), "F n error" when n failed, "DONE sent acked failed".
 *   consume BOOTSTRAP TOPIC
 *     reads every partition from the beginning to the end offsets taken at start; prints
 *     "R n" per record and "END read".
 *
 * Numbers rather than payloads: the test compares sets (no acknowledged number missing) and
 * counts (no number read twice).
 */
public final class KafkaStream {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("produce")) {
            produce(args[1], args[2], new File(args[3]),
                    args.length > 4 ? Long.parseLong(args[4]) : 5);
        } else {
            consume(args[1], args[2]);
        }
    }

    private static void produce(String bootstrap, String topic, File stop, long pauseMs)
            throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("max.in.flight.requests.per.connection", "5");
        p.put("retries", Integer.toString(Integer.MAX_VALUE));
        p.put("delivery.timeout.ms", "180000");
        p.put("request.timeout.ms", "10000");
        p.put("linger.ms", "5");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        PrintWriter out = new PrintWriter(System.out, false);
        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        long start = System.nanoTime();
        long sent = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            long lastFlush = System.nanoTime();
            while (!stop.exists()) {
                final long n = sent++;
                String v = Long.toString(n);
                producer.send(new ProducerRecord<>(topic, v, v), (meta, error) -> {
                    synchronized (out) {
                        if (error == null) {
                            acked.incrementAndGet();
                            out.println("A " + n + " " + (System.nanoTime() - start) / 1_000_000);
                        } else {
                            failed.incrementAndGet();
                            out.println("F " + n + " " + error);
                        }
                    }
                });
                Thread.sleep(pauseMs);
                if (System.nanoTime() - lastFlush > 100_000_000L) {
                    synchronized (out) {
                        out.flush();
                    }
                    lastFlush = System.nanoTime();
                }
            }
            producer.flush();
        }
        synchronized (out) {
            out.println("DONE " + sent + " " + acked.get() + " " + failed.get());
            out.flush();
        }
    }

    private static void consume(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        PrintWriter out = new PrintWriter(System.out, false);
        long read = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(60))) {
                parts.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts, Duration.ofSeconds(60));
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (System.nanoTime() < deadline) {
                boolean done = true;
                for (TopicPartition tp : parts) {
                    if (consumer.position(tp, Duration.ofSeconds(30)) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    out.println("R " + r.value());
                    read++;
                }
            }
        }
        out.println("END " + read);
        out.flush();
    }
}
