package io.bitrelay.actors.coordinator;

/** Why a job ended without failing: the scheduler decides it, the gateway tells the client. */
public enum FinishReason { EOS, MAX_TOKENS, CANCELLED }
