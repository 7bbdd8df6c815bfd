package io.bitrelay.actors.serialization;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import com.esotericsoftware.kryo.util.MapReferenceResolver;
import com.esotericsoftware.kryo.util.Pool;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.JSerializer;

/**
 * Pekko serializer for {@link ClusterMessage}s: Kryo 5 with every class registered under a fixed id
 * (see {@link ProtocolRegistry}). Kryo instances are not thread-safe, hence the pool.
 */
public final class KryoSerializer extends JSerializer {
    /** Pekko reserves 0–40 for itself. */
    private static final int IDENTIFIER = 7_420_001;

    private final Pool<Kryo> pool;

    public KryoSerializer(ExtendedActorSystem system) {
        ActorRefResolver resolver = ActorRefResolver.get(Adapter.toTyped(system));
        this.pool = new Pool<>(true, false, 16) {
            @Override
            protected Kryo create() {
                Kryo kryo = new Kryo(new ActorRefClassResolver(), new MapReferenceResolver());
                kryo.setRegistrationRequired(true);
                kryo.setReferences(false);
                kryo.register(ActorRef.class, new ActorRefSerializer(resolver), ProtocolRegistry.ACTOR_REF_ID);
                ProtocolRegistry.register(kryo);
                return kryo;
            }
        };
    }

    @Override
    public int identifier() {
        return IDENTIFIER;
    }

    @Override
    public boolean includeManifest() {
        return false;
    }

    @Override
    public byte[] toBinary(Object message) {
        Kryo kryo = pool.obtain();
        try (Output output = new Output(256, -1)) {
            kryo.writeClassAndObject(output, message);
            return output.toBytes();
        } finally {
            pool.free(kryo);
        }
    }

    @Override
    public Object fromBinaryJava(byte[] bytes, Class<?> manifest) {
        Kryo kryo = pool.obtain();
        try (Input input = new Input(bytes)) {
            return kryo.readClassAndObject(input);
        } finally {
            pool.free(kryo);
        }
    }
}
