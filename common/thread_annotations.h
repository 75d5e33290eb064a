// Clang thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html).
//
// They state which mutex guards which member and which functions need it held, so that
// clang's -Wthread-safety checks the locking at compile time. GCC has no such analysis:
// there the macros expand to nothing and the code compiles unchanged.
//
// The annotations only bite on a mutex type declared as a CAPABILITY (std::mutex is not):
// see common/annotated_mutex.h.
#ifndef RESUMELB_COMMON_THREAD_ANNOTATIONS_H_
#define RESUMELB_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define RLB_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define RLB_THREAD_ANNOTATION(x)
#endif

// On a class: objects of it are a capability (a lock), e.g. CAPABILITY("mutex").
#define CAPABILITY(x) RLB_THREAD_ANNOTATION(capability(x))
// On an RAII class: it acquires a capability in its constructor, releases it in its destructor.
#define SCOPED_CAPABILITY RLB_THREAD_ANNOTATION(scoped_lockable)
// On a data member: reading or writing it needs the capability held.
#define GUARDED_BY(x) RLB_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the pointee needs the capability held.
#define PT_GUARDED_BY(x) RLB_THREAD_ANNOTATION(pt_guarded_by(x))
// On a function: the caller must hold the capability (and still holds it afterwards).
#define REQUIRES(...) RLB_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// On a function: the caller must not hold the capability (the function takes it).
#define EXCLUDES(...) RLB_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On a function: it acquires / releases the capability (of `this` when none is named).
#define ACQUIRE(...) RLB_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) RLB_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// On a function: it asserts the capability is held (a runtime check the analysis trusts).
#define ASSERT_CAPABILITY(x) RLB_THREAD_ANNOTATION(assert_capability(x))
// On a function: the analysis does not look inside it (say why where it is used).
#define NO_THREAD_SAFETY_ANALYSIS RLB_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // RESUMELB_COMMON_THREAD_ANNOTATIONS_H_
