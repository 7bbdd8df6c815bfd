package io.bitrelay.deploy.bench;

import java.util.Locale;

/** Where in the pipeline a chaos kill strikes: the stage that reads prompts, one in between, or the one that samples. */
enum StagePosition {
    FIRST, MIDDLE, LAST;

    /** The stage index at this position of a pipeline of {@code stages} (3 or more, so that the three differ). */
    int stageOf(int stages) {
        if (stages < 3) {
            throw new IllegalArgumentException("first, middle and last stages differ only with 3 or more stages, got " + stages);
        }
        return switch (this) {
            case FIRST -> 0;
            case MIDDLE -> stages / 2;
            case LAST -> stages - 1;
        };
    }

    String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** first, middle or last, case-insensitive; anything else is an error naming the choices. */
    static StagePosition parse(String text) {
        for (StagePosition position : values()) {
            if (position.label().equals(text.trim().toLowerCase(Locale.ROOT))) {
                return position;
            }
        }
        throw new IllegalArgumentException("a stage position is first, middle or last, got '" + text + "'");
    }
}
