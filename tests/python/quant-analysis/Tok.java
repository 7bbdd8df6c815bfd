import io.bitrelay.runtime.tokenizer.OptTokenizer;
import java.nio.file.*;
import java.io.*;
public class Tok {
    public static void main(String[] a) throws Exception {
        try (OptTokenizer t = OptTokenizer.load(Path.of(a[0]))) {
            int[] ids = t.encodeWithoutSpecialTokens(Files.readString(Path.of(a[1])));
            try (DataOutputStream o = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(a[2])))) {
                for (int i : ids) o.writeInt(i);
            }
            System.out.println(ids.length);
        }
    }
}
