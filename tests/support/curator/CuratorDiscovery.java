// Apache Curator's service discovery, driven from the recipe tests (see
// tests/recipes/test_recipe_service_discovery.py), to check that Java services and ours see
// each other on the same paths.
//
//   register <connect> <base> <name> <id> <port>    register, print REGISTERED, hold until
//                                                   stdin closes, then unregister
//   query    <connect> <base> <name>                print one INSTANCE line per instance
//                                                   (id, address, port, payload) and the
//                                                   instance a round-robin provider picks
//   await    <connect> <base> <name> <ids> <secs>   exit 0 once a ServiceCache holds exactly
//                                                   the comma-separated ids, 1 on timeout
import java.io.InputStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.strategies.RoundRobinStrategy;

public class CuratorDiscovery {
    @SuppressWarnings({"rawtypes", "unchecked"})
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        CuratorFramework curator = CuratorFrameworkFactory.newClient(
            args[1], 10000, 10000, new ExponentialBackoffRetry(100, 3));
        curator.start();
        curator.blockUntilConnected();
        JsonInstanceSerializer<Map> serializer = new JsonInstanceSerializer<>(Map.class);
        ServiceDiscovery<Map> discovery = ServiceDiscoveryBuilder.builder(Map.class)
            .client(curator).basePath(args[2]).serializer(serializer).build();
        discovery.start();
        int status = 0;
        String name = args[3];
        if (mode.equals("register")) {
            Map<String, Object> payload = new LinkedHashMap<>();
            payload.put("lang", "java");
            ServiceInstance<Map> instance = ServiceInstance.<Map>builder()
                .name(name).id(args[4]).address("127.0.0.1").port(Integer.parseInt(args[5]))
                .payload(payload).uriSpec(new UriSpec("{scheme}://{address}:{port}")).build();
            discovery.registerService(instance);
            System.out.println("REGISTERED " + instance.getId());
            System.out.flush();
            InputStream in = System.in;
            while (in.read() != -1) { }
            discovery.unregisterService(instance);
        } else if (mode.equals("query")) {
            for (ServiceInstance<Map> i : discovery.queryForInstances(name)) {
                System.out.println("INSTANCE " + i.getId() + " " + i.getAddress() + " "
                    + i.getPort() + " " + i.getPayload() + " " + i.getServiceType());
            }
            ServiceProvider<Map> provider = discovery.serviceProviderBuilder()
                .serviceName(name).providerStrategy(new RoundRobinStrategy<>()).build();
            provider.start();
            ServiceInstance<Map> picked = provider.getInstance();
            System.out.println("PROVIDER " + (picked == null ? "none" : picked.getId()));
            provider.close();
        } else if (mode.equals("await")) {
            TreeSet<String> want = new TreeSet<>();
            if (!args[4].isEmpty()) {
                want.addAll(Arrays.asList(args[4].split(",")));
            }
            long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(args[5]) * 1000);
            ServiceCache<Map> cache = discovery.serviceCacheBuilder().name(name).build();
            cache.start();
            TreeSet<String> seen = new TreeSet<>();
            status = 1;
            while (System.currentTimeMillis() < deadline) {
                seen.clear();
                for (ServiceInstance<Map> i : cache.getInstances()) {
                    seen.add(i.getId());
                }
                if (seen.equals(want)) {
                    status = 0;
                    break;
                }
                Thread.sleep(50);
            }
            System.out.println("SEEN " + String.join(",", seen));
            cache.close();
        }
        System.out.flush();
        discovery.close();
        curator.close();
        System.exit(status);
    }
}
