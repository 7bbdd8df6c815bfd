/** The serving cluster: Pekko control plane (coordinator, stage workers, gateway) and the Aeron data plane. */
package io.bitrelay.actors;
