// Deliberate back-arrows for the architecture checker to find: a type of the fixture's Data layer that uses its
// Training layer only inside a method body (no signature mentions it), as real back-arrows usually do, and a Spec type
// that names a Training type only in an attribute.
namespace SeqDsl.Tests.ArchitectureFixture.Training

type TrainerLike() =
    static member Epochs() = 3

namespace SeqDsl.Tests.ArchitectureFixture.Data

type LoaderLike() =
    member _.Rows() = 10 * SeqDsl.Tests.ArchitectureFixture.Training.TrainerLike.Epochs()

namespace SeqDsl.Tests.ArchitectureFixture.Spec

// a use only an attribute holds (as [JsonDerivedType(typeof(…))] does in Spec)
[<System.ComponentModel.TypeConverter(typeof<SeqDsl.Tests.ArchitectureFixture.Training.TrainerLike>)>]
type Tagged() =
    member _.Name = "tagged"

namespace SeqDsl.Tests.ArchitectureFixture.Engine

type Clean() =
    member _.Width = 4
