"""The rule-based extractor's vocabulary: radiology concepts and context triggers.

Written for chest radiograph reports (IU X-ray / MIMIC style). Each list is comma-separated
lower-case phrases; plurals are listed where they occur. Context triggers follow NegEx
(Chapman et al., 2001): *pre* triggers open a scope to their right, *post* triggers to their
left, both bounded by the clause; *pseudo* triggers look like negations but are not
("no change", "partially resolved": a qualified resolution leaves some of the finding) and are
consumed so that their words trigger nothing.
"""
from __future__ import annotations

FINDINGS = """
pneumothorax, pneumothoraces, hydropneumothorax, pleural air collection,
pleural effusion, pleural effusions, effusion, effusions, pleural fluid,
pericardial effusion, pericardial effusions,
consolidation, consolidations, consolidative opacity, airspace consolidation,
opacity, opacities, opacification, airspace opacity, airspace opacities, air space opacity,
air space opacities, airspace disease, air space disease, nodular opacity, nodular opacities,
infiltrate, infiltrates, infiltration, atelectasis, atelectatic changes, atelectatic change,
edema, pulmonary edema, interstitial edema, vascular congestion, pulmonary vascular congestion,
congestion, vascular engorgement, venous engorgement, engorgement, cardiomegaly, cardiac enlargement, enlargement,
pneumonia, pneumonias, bronchopneumonia, pneumonitis, infection, infectious process, haziness, opaque, opaque area,
opaque areas,
nodule, nodules, mass, masses, lesion, lesions,
granuloma, granulomas, granulomata, granulomatous disease, calcification, calcifications,
scarring, scar, scars, fibrosis, fibrotic changes,
emphysema, emphysematous changes, hyperinflation, copd, chronic obstructive pulmonary disease,
fracture, fractures, deformity, deformities,
degenerative changes, degenerative change, degenerative disease, spondylosis, osteophytes,
scoliosis, dextroscoliosis, levoscoliosis, dextrocurvature, levocurvature, curvature, spine curvature, scoliotic changes,
kyphosis, hernia, hiatal hernia, hiatus hernia, thickening, pleural thickening,
lymphadenopathy, adenopathy, cyst, cysts, bronchiectasis, tortuosity, ectasia,
interstitial markings, interstitial opacities, interstitial disease, reticular opacities,
pneumoperitoneum, free air, tuberculosis, tb, aspiration, cavitation, cavity, collapse,
volume loss, blunting, metastases, metastatic disease, abnormality, abnormalities, disease,
process, postsurgical changes, postoperative changes, surgical changes, density, densities,
heart failure, congestive heart failure, chf, interstitial changes, chronic changes,
hyperexpansion, prominence, cephalization, vascular cephalization, air-fluid level, air fluid level
"""

ANATOMY = """
lung, lungs, lung base, lung bases, lung apex, lung apices, lung field, lung fields,
lung volumes, lung zone, base, bases, apex, apices, lobe, lobes, lingula, zone, zones,
hilum, hila, hilar region, hilar regions, heart, heart size, cardiac silhouette,
cardiomediastinal silhouette, cardiomediastinal contours, cardiac contours, mediastinum,
mediastinal silhouette, mediastinal contours, mediastinal contour, aorta, thoracic aorta,
aortic arch, aortic knob, pleura, pleural space, pleural spaces, costophrenic angle,
costophrenic angles, costophrenic sulcus, hemidiaphragm, hemidiaphragms, diaphragm,
diaphragms, spine, thoracic spine, lumbar spine, vertebra, vertebrae, vertebral body,
vertebral bodies, rib, ribs, clavicle, clavicles, sternum, scapula, shoulder, shoulders,
humerus, trachea, bronchus, bronchi, airway, airways, chest, thorax, hemithorax, hemithoraces,
soft tissues, soft tissue, bones, osseous structures, bony structures, skeletal structures,
abdomen, upper abdomen, pulmonary vasculature, vasculature, pulmonary vascularity,
vascularity, cardiopulmonary, bibasilar, basilar, perihilar, retrocardiac, apical, infrahilar,
suprahilar, hilar, lingular, atrium, right atrium, ventricle, right ventricle,
chest wall, fissure, minor fissure, major fissure, neck, axilla
"""

DEVICES = """
endotracheal tube, et tube, nasogastric tube, ng tube, feeding tube, enteric tube, chest tube,
tracheostomy tube, tracheostomy, central venous catheter, central line, catheter, catheters,
picc, picc line, port, port-a-cath, pacemaker, pacer, pacemaker leads, leads, aicd,
defibrillator, cardiac device, sternotomy wires, sternotomy, median sternotomy, wires,
surgical clips, clips, stent, stents, prosthesis, hardware, fixation hardware, icd,
icd leads, pacemaker generator, generator, valve replacement
"""

MODIFIERS = """
small, large, tiny, minimal, mild, moderate, severe, marked, massive, trace,
focal, patchy, diffuse, multifocal, streaky, linear, hazy, dense, subtle,
acute, chronic, old, new, stable, unchanged, increased, decreased, improved, worsening,
worsened, calcified, enlarged, normal, clear, well-expanded, hyperexpanded, hyperinflated,
hypoinflated, well-inflated,
tortuous, low, subsegmental, atherosclerotic, ectatic, midline, prominent,
elevated, persistent, right, left, bilateral, right-sided, left-sided, upper, middle, mid, lower
"""

# Words that, directly before an anatomy term, become part of it ("right lower lobe").
LOCATION_WORDS = frozenset({"right", "left", "bilateral", "upper", "middle", "mid", "lower",
                            "right-sided", "left-sided"})

NEGATION_PRE = """
no, not, without, absence of, negative for, no evidence of, no evidence for,
no signs of, no sign of, free of, clear of, no definite, rather than, resolution of, nor,
clearing of, resolved, no suggestion of, without suggestion of, no concern for, no suspicion of, no suspicion for
"""
NEGATION_POST = """
not seen, is not seen, are not seen, not identified, not visualized, not present,
not demonstrated, not evident, not appreciated, not noted, not detected, absent, is absent, are absent,
resolved, has resolved, have resolved, cleared, has cleared, have cleared, no longer seen, no longer visualized, has been removed,
have been removed, ruled out
"""
UNCERTAIN_PRE = """
possible, possibly, probable, probably, likely, questionable, question of, suspected,
suspicious for, suspicious of, concerning for, may represent, may be, might represent,
could represent, could be, cannot exclude, can not exclude, cannot rule out, can not rule out,
differential includes, maybe, suggesting, versus, vs, equivocal, suggestive of, suggests, suggest, worrisome for,
may reflect, could reflect, which may represent, not excluded, question, differential diagnosis includes,
differential diagnosis include, differential diagnosis of, differential diagnosis would include,
differential considerations include, differential considerations, differential diagnosis, considerations include,
considerations would include, rule out, to rule out, evaluate for, evaluation for, assess for,
correlate for, correlate clinically for, clinical correlation for, suggestion of, concern for, raises concern for,
suspicion for, suspicion of, may indicate, could indicate, might indicate, may also be, may also represent,
may include, difficult to exclude, difficult to completely exclude, difficult to entirely exclude
"""
UNCERTAIN_POST = """
cannot be excluded, can not be excluded, not excluded, is not excluded, cannot be ruled out,
can not be ruled out, not ruled out, is possible, is suspected, is questioned, is likely,
are possible, is not entirely excluded, cannot be entirely excluded,
not entirely excluded, cannot be completely excluded, not completely excluded, suspected, is in the differential,
are in the differential, in the differential, would be a consideration, is a consideration
"""
# "A versus B": both alternatives are uncertain, so these also reach back to the one finding before them.
ALTERNATIVE = """
versus, vs
"""
PSEUDO = """
no change, no changes, not change, no interval change, no significant change, no increase,
no decrease, not only, not necessarily, no further, gram negative, not well seen,
not well visualized, without change, without significant change, without interval change,
without significant interval change, without appreciable change, without substantial change,
no appreciable change, no substantial change, not significantly changed, not changed,
almost completely resolved, nearly completely resolved, nearly resolved, partially resolved, incompletely resolved,
not completely resolved, not entirely resolved, not fully resolved
"""
# "Evaluation for pneumothorax is limited", "limits evaluation for an effusion": a finding that the exam
# could not assess is not asserted at all (neither present, absent nor uncertain); see rules._exam_limited.
EVALUATION = frozenset({"evaluation", "evaluate", "evaluating", "assessment", "assess", "assessing"})
LIMITATION = frozenset({"limited", "limits", "limit", "limiting", "limitation", "limitations"})
# Phrases that point one finding at another ("consolidation ... suggestive of pneumonia").
SUGGESTIVE = """
suggestive of, suggests, suggest, to suggest, suggesting, consistent with, compatible with, concerning for,
suspicious for, suspicious of, worrisome for, may represent, could represent, might represent,
likely representing, representing, reflecting, may reflect, could reflect,
which may represent, indicative of
"""
# Phrases that end a trigger's scope within a sentence.
TERMINATION = """
but, however, although, though, whereas, except, aside from, apart from, which, while
"""
# A comma or "and" starts a new clause when the words after it hold one of these verbs.
CLAUSE_VERBS = frozenset("""
is are was were has have appears appear appeared remains remain remained demonstrates
demonstrate shows show seen noted identified visualized present unremarkable measures
""".split())


def phrases(block: str) -> list[tuple[str, ...]]:
    """Comma-separated phrases of ``block`` as word tuples."""
    return [tuple(p.split()) for p in block.replace("\n", " ").split(",") if p.strip()]
