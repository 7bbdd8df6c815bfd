package io.bitrelay.deploy;

import io.bitrelay.deploy.bench.BenchCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code bitrelay} launcher; each job is one subcommand in its own class. */
@Command(name = "bitrelay",
        mixinStandardHelpOptions = true,
        version = "bitrelay 0.1.0",
        description = "Serve OPT language models with quantized inter-stage links.",
        subcommands = {
                DemoCommand.class,
                io.bitrelay.deploy.cluster.ClusterCommand.class,
                io.bitrelay.deploy.cluster.NodeCommand.class,
                io.bitrelay.deploy.cluster.DriverCommand.class,
                io.bitrelay.deploy.security.CertsCommand.class,
                GenerateCommand.class,
                SynthCommand.class,
                io.bitrelay.deploy.verify.GoldenCommand.class,
                BenchCommand.class,
                EvalCommand.class,
                QuantErrorCommand.class,
                PlanCommand.class,
                CommandLine.HelpCommand.class
        })
public final class BitrelayCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line, shared by main and the tests so both see the same error handling. */
    public static CommandLine commandLine() {
        CommandLine commandLine = new CommandLine(new BitrelayCli());
        commandLine.setExecutionExceptionHandler((exception, cmd, parseResult) -> {
            cmd.getErr().println("bitrelay " + cmd.getCommandName() + ": " + describe(exception));
            if (Boolean.getBoolean("bitrelay.debug")) {
                exception.printStackTrace(cmd.getErr());
            }
            return 2;
        });
        return commandLine;
    }

    private static String describe(Throwable exception) {
        String message = exception.getMessage();
        return message == null ? exception.getClass().getSimpleName() : message;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
