package io.bitrelay.actors.serialization;

import com.esotericsoftware.kryo.Registration;
import com.esotericsoftware.kryo.util.DefaultClassResolver;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * Pekko's typed references are instances of internal adapter classes; this maps every implementation
 * onto the one registration of the {@link ActorRef} interface, so registration can stay required.
 */
final class ActorRefClassResolver extends DefaultClassResolver {
    @Override
    public Registration getRegistration(Class type) {
        if (type != ActorRef.class && ActorRef.class.isAssignableFrom(type)) {
            return super.getRegistration(ActorRef.class);
        }
        return super.getRegistration(type);
    }
}
