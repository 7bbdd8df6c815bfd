package io.bitrelay.runtime.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * The raw address behind a JCuda handle or pointer (CUdeviceptr, CUstream, a cuMemAllocHost pointer), for
 * the libraries we call through java.lang.foreign (cuBLASLt), which take device pointers and streams as
 * plain addresses. JCuda keeps the address in a protected accessor; both live in the unnamed module, so a
 * private lookup reaches it without opening anything.
 */
final class NativeAddress {
    private static final MethodHandle NATIVE_POINTER;
    private static final MethodHandle BYTE_OFFSET;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup());
            NATIVE_POINTER = lookup.findVirtual(NativePointerObject.class, "getNativePointer", MethodType.methodType(long.class));
            BYTE_OFFSET = MethodHandles.privateLookupIn(Pointer.class, MethodHandles.lookup())
                    .findVirtual(Pointer.class, "getByteOffset", MethodType.methodType(long.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private NativeAddress() {
    }

    /** The address a JCuda object stands for, its byte offset included for pointers. */
    static long of(NativePointerObject object) {
        try {
            long address = (long) NATIVE_POINTER.invokeExact(object);
            if (object instanceof Pointer pointer) {
                address += (long) BYTE_OFFSET.invokeExact(pointer);
            }
            return address;
        } catch (Throwable e) {
            throw new IllegalStateException("cannot read the native address of " + object, e);
        }
    }
}
